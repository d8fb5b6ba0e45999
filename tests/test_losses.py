"""PPO's losses against values worked out by hand."""

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxppo.core.config import PPOConfig
from purejaxppo.core.losses import (
    adapt_kl_beta,
    approx_kl,
    clip_fraction,
    clipped_surrogate_loss,
    kl_penalty_loss,
    loss_hyperparams,
    normalize,
    ppo_loss,
    value_loss,
)
from purejaxppo.core.objectives import make_objective
from purejaxppo.core.records import Batch

# ratio, advantage -> the term min(ratio * A, clip(ratio, 0.8, 1.2) * A) picks, with clip_eps = 0.2:
SURROGATE_CASES = [
    (1.5, 2.0, 2.4),    # ratio above the band, A > 0: clipped, 1.2 * 2 = 2.4 (not 3.0)
    (0.5, -1.0, -0.8),  # ratio below the band, A < 0: clipped, 0.8 * -1 = -0.8 (not -0.5)
    (1.1, 3.0, 3.3),    # inside the band: unchanged, 1.1 * 3
    (0.5, 1.0, 0.5),    # below the band, A > 0: the pessimistic unclipped 0.5 (not 0.8)
    (1.5, -1.0, -1.5),  # above the band, A < 0: the pessimistic unclipped -1.5 (not -1.2)
]
# Which of them min() takes from the clipped term (zero gradient w.r.t. log_prob):
CLIPPED = [True, True, False, False, False]


def _surrogate_inputs():
    ratio = np.array([c[0] for c in SURROGATE_CASES], np.float32)
    adv = np.array([c[1] for c in SURROGATE_CASES], np.float32)
    old_log_prob = np.array([-0.3, -1.2, -2.0, -0.7, -0.1], np.float32)
    log_prob = old_log_prob + np.log(ratio)
    return jnp.asarray(log_prob), jnp.asarray(old_log_prob), jnp.asarray(adv)


def test_clipped_surrogate_loss_hand_values():
    log_prob, old_log_prob, adv = _surrogate_inputs()
    # -(2.4 - 0.8 + 3.3 + 0.5 - 1.5) / 5 = -3.9 / 5 = -0.78
    loss = clipped_surrogate_loss(log_prob, old_log_prob, adv, 0.2)
    np.testing.assert_allclose(float(loss), -0.78, rtol=1e-5)
    for i, (_, _, term) in enumerate(SURROGATE_CASES):  # each sample on its own
        one = clipped_surrogate_loss(log_prob[i:i + 1], old_log_prob[i:i + 1], adv[i:i + 1], 0.2)
        np.testing.assert_allclose(float(one), -term, rtol=1e-5)


def test_clipped_surrogate_loss_equal_policies_is_minus_mean_advantage():
    adv = jnp.array([1.0, -2.0, 4.0, 0.5])
    lp = jnp.array([-0.1, -1.0, -3.0, -0.2])
    np.testing.assert_allclose(float(clipped_surrogate_loss(lp, lp, adv, 0.2)), -0.875, rtol=1e-6)


def test_clipped_surrogate_gradient_zero_where_clipped():
    log_prob, old_log_prob, adv = _surrogate_inputs()
    grad = np.asarray(jax.grad(clipped_surrogate_loss)(log_prob, old_log_prob, adv, 0.2))
    n = len(SURROGATE_CASES)
    for i, ((ratio, a, _), clipped) in enumerate(zip(SURROGATE_CASES, CLIPPED)):
        # d/d log_prob of -(1/n) * ratio * A is -(1/n) * ratio * A; the clipped term is constant there.
        expected = 0.0 if clipped else -ratio * a / n
        np.testing.assert_allclose(grad[i], expected, rtol=1e-5, atol=1e-7)
    assert np.all(grad[~np.array(CLIPPED)] != 0)


# values, old_values, returns with clip_eps = 0.2:
#   (V - R)^2 | clipped V = old + clip(V - old, +-0.2) | (clipped V - R)^2 | max
#   a: V=1.0, old=0, R=0.5: 0.25 | 0.2 | 0.09 | 0.25  (moved past the target: unclipped error larger)
#   b: V=1.0, old=0, R=2.0: 1.00 | 0.2 | 3.24 | 3.24  (moved beyond eps from old: the clipped error is used)
#   c: V=0.1, old=0, R=1.0: 0.81 | 0.1 | 0.81 | 0.81  (inside the clip range: unchanged)
#   d: V=0.5, old=1, R=0.0: 0.25 | 0.8 | 0.64 | 0.64  (moved down beyond eps)
VALUES = np.array([1.0, 1.0, 0.1, 0.5], np.float32)
OLD_VALUES = np.array([0.0, 0.0, 0.0, 1.0], np.float32)
RETURNS = np.array([0.5, 2.0, 1.0, 0.0], np.float32)


def test_value_loss_unclipped():
    # 0.5 * mean(0.25, 1.0, 0.81, 0.25) = 0.5 * 2.31 / 4 = 0.28875
    np.testing.assert_allclose(float(value_loss(VALUES, OLD_VALUES, RETURNS)), 0.28875, rtol=1e-5)
    np.testing.assert_allclose(float(value_loss(VALUES, OLD_VALUES, RETURNS, None)), 0.28875, rtol=1e-5)


def test_value_loss_clipped():
    # 0.5 * mean(0.25, 3.24, 0.81, 0.64) = 0.5 * 4.94 / 4 = 0.6175
    np.testing.assert_allclose(float(value_loss(VALUES, OLD_VALUES, RETURNS, 0.2)), 0.6175, rtol=1e-5)


@pytest.mark.parametrize("i,expected", [(0, 0.125), (1, 1.62), (2, 0.405), (3, 0.32)])
def test_value_loss_clipped_per_case(i, expected):
    s = slice(i, i + 1)
    np.testing.assert_allclose(float(value_loss(VALUES[s], OLD_VALUES[s], RETURNS[s], 0.2)), expected, rtol=1e-5)


def test_value_loss_clipped_gradient_zero_when_clipped_error_used():
    # Case b: the clipped value is used and does not depend on V: no gradient. Case c: gradient (V - R) / n.
    grad = np.asarray(jax.grad(value_loss)(jnp.asarray(VALUES), OLD_VALUES, RETURNS, 0.2))
    np.testing.assert_allclose(grad, [(1.0 - 0.5) / 4, 0.0, (0.1 - 1.0) / 4, 0.0], atol=1e-6)


def test_approx_kl():
    rng = np.random.default_rng(0)
    old = rng.normal(size=1000).astype(np.float32)
    new = old + rng.normal(scale=0.5, size=1000).astype(np.float32)
    kl = float(approx_kl(jnp.asarray(new), jnp.asarray(old)))
    log_ratio = (new - old).astype(np.float64)
    np.testing.assert_allclose(kl, np.mean(np.exp(log_ratio) - 1 - log_ratio), rtol=1e-4)
    assert kl > 0
    assert float(approx_kl(jnp.asarray(old), jnp.asarray(old))) == 0.0
    # every per-sample term is >= 0, so any subset is too
    for s in range(0, 1000, 100):
        assert float(approx_kl(jnp.asarray(new[s:s + 7]), jnp.asarray(old[s:s + 7]))) >= 0


def test_clip_fraction():
    ratios = np.array([1.5, 0.5, 1.1, 0.9, 1.25, 0.79, 1.0, 1.19], np.float32)  # outside [0.8, 1.2]: 4 of 8
    old = np.full(8, -1.0, np.float32)
    frac = float(clip_fraction(jnp.asarray(old + np.log(ratios)), jnp.asarray(old), 0.2))
    np.testing.assert_allclose(frac, 4 / 8)
    np.testing.assert_allclose(float(clip_fraction(old, old, 0.2)), 0.0)
    np.testing.assert_allclose(float(clip_fraction(jnp.asarray(old + np.log(ratios)), jnp.asarray(old), 0.6)), 0.0)


def test_normalize():
    x = jnp.asarray(np.random.default_rng(1).normal(3.0, 5.0, size=500), jnp.float32)
    y = np.asarray(normalize(x))
    np.testing.assert_allclose(y.mean(), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(), 1.0, rtol=1e-4)


@pytest.mark.parametrize("norm_adv,clip_value,vf_clip_eps,objective", [
    (False, False, None, "clip"), (True, True, None, "clip"), (True, True, 0.05, "clip"),
    (True, True, None, "kl_penalty")])
def test_ppo_loss_combines_its_parts(norm_adv, clip_value, vf_clip_eps, objective):
    """total = policy + vf_coef * value - ent_coef * entropy, with an apply_fn whose outputs are known."""
    rng = np.random.default_rng(2)
    n, k = 16, 3
    logits = rng.normal(size=(n, k)).astype(np.float32)
    values = rng.normal(size=n).astype(np.float32)
    action = rng.integers(0, k, size=n)
    batch = Batch(obs=jnp.zeros((n, 1)), action=jnp.asarray(action),
                  log_prob=jnp.asarray(rng.normal(-1.0, 0.3, size=n), jnp.float32),
                  value=jnp.asarray(values + rng.normal(scale=0.5, size=n), jnp.float32),
                  advantages=jnp.asarray(rng.normal(1.0, 2.0, size=n), jnp.float32),
                  returns=jnp.asarray(rng.normal(size=n), jnp.float32),
                  dist_params={"logits": jnp.asarray(rng.normal(size=(n, k)), jnp.float32)})  # the rollout's logits
    apply_fn = lambda params, batch: (distrax.Categorical(logits=params["logits"]), params["values"])
    params = {"logits": jnp.asarray(logits), "values": jnp.asarray(values)}
    config = PPOConfig(norm_adv=norm_adv, clip_value=clip_value, clip_eps=0.2, vf_coef=0.7, ent_coef=0.03,
                       vf_clip_eps=vf_clip_eps, objective=objective)
    total, m = ppo_loss(params, batch, jnp.float32(3.0), evaluate=apply_fn, objective=make_objective(config),
                        hp=loss_hyperparams(config))

    # numpy reference
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    lp = log_p[np.arange(n), action]
    adv = np.asarray(batch.advantages, np.float64)
    if norm_adv:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    ratio = np.exp(lp - np.asarray(batch.log_prob))
    if objective == "clip":
        policy = -np.mean(np.minimum(ratio * adv, np.clip(ratio, 0.8, 1.2) * adv))
    else:  # KL(old || new) of two categoricals, exactly
        old_logits = np.asarray(batch.dist_params["logits"], np.float64)
        old_log_p = old_logits - np.log(np.exp(old_logits).sum(-1, keepdims=True))
        kl = (np.exp(old_log_p) * (old_log_p - log_p)).sum(-1)
        policy = -(np.mean(ratio * adv) - 3.0 * np.mean(kl))
        np.testing.assert_allclose(float(m["kl"]), np.mean(kl), rtol=1e-4)
    ret, old_v = np.asarray(batch.returns), np.asarray(batch.value)
    if clip_value:
        eps = 0.2 if vf_clip_eps is None else vf_clip_eps
        clipped_v = old_v + np.clip(values - old_v, -eps, eps)
        vloss = 0.5 * np.mean(np.maximum((values - ret) ** 2, (clipped_v - ret) ** 2))
    else:
        vloss = 0.5 * np.mean((values - ret) ** 2)
    entropy = np.mean(-(np.exp(log_p) * log_p).sum(-1))

    np.testing.assert_allclose(float(m["policy_loss"]), policy, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(float(m["value_loss"]), vloss, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(float(m["entropy"]), entropy, rtol=1e-4)
    np.testing.assert_allclose(float(total), policy + 0.7 * vloss - 0.03 * entropy, rtol=1e-4, atol=1e-6)
    assert float(m["approx_kl"]) >= 0
    assert 0.0 <= float(m["clip_fraction"]) <= 1.0


def test_kl_penalty_loss_hand_values():
    # ratios 2 and 0.5, advantages 1 and 4: mean(ratio * A) = (2 + 2) / 2 = 2; KL mean 0.3; beta 5: -(2 - 1.5)
    old = jnp.array([-1.0, -1.0])
    loss = kl_penalty_loss(old + jnp.log(jnp.array([2.0, 0.5])), old, jnp.array([1.0, 4.0]),
                           jnp.array([0.1, 0.5]), 5.0)
    np.testing.assert_allclose(float(loss), -0.5, rtol=1e-5)


@pytest.mark.parametrize("kl, beta", [(0.02, 4.0), (0.016, 4.0), (0.01, 2.0), (0.007, 2.0), (0.006, 1.0),
                                      (0.0, 1.0)])
def test_adapt_kl_beta_doubles_above_and_halves_below_the_band(kl, beta):
    """kl_target 0.01: the band is [0.01 / 1.5, 0.015] = [0.00667, 0.015]; beta starts at 2."""
    np.testing.assert_allclose(float(adapt_kl_beta(jnp.float32(2.0), jnp.float32(kl), 0.01)), beta)
