"""GAE against an independent numpy reference written from the spec:

    delta_t = r_t + gamma * (1 - term_t) * next_values_t - values_t
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},   A_T = 0
    returns = A + values
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxppo.core.gae import gae


def reference_gae(rewards, values, next_values, terminations, dones, gamma, lam):
    """Plain double loop in float64, time-major [T, B]."""
    rewards, values, next_values = (np.asarray(x, np.float64) for x in (rewards, values, next_values))
    terminations, dones = np.asarray(terminations, np.float64), np.asarray(dones, np.float64)
    T, B = rewards.shape
    adv = np.zeros((T, B))
    for b in range(B):
        next_adv = 0.0
        for t in reversed(range(T)):
            delta = rewards[t, b] + gamma * (1.0 - terminations[t, b]) * next_values[t, b] - values[t, b]
            next_adv = delta + gamma * lam * (1.0 - dones[t, b]) * next_adv
            adv[t, b] = next_adv
    return adv, adv + values


def random_rollout(seed, T=30, B=4):
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=(T, B)).astype(np.float32)
    values = rng.normal(size=(T, B)).astype(np.float32)
    next_values = rng.normal(size=(T, B)).astype(np.float32)
    u = rng.uniform(size=(T, B))
    terminations = u < 0.1  # terminated: done=1, term=1
    truncations = (u >= 0.1) & (u < 0.2)  # truncated: done=1, term=0
    dones = terminations | truncations
    assert terminations.any() and truncations.any() and (~dones).any()
    return rewards, values, next_values, terminations, dones


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.9, 0.5), (0.97, 1.0)])
def test_matches_reference_on_random_data(seed, gamma, lam):
    r, v, nv, term, done = random_rollout(seed)
    adv, ret = gae(jnp.asarray(r), jnp.asarray(v), jnp.asarray(nv), jnp.asarray(term), jnp.asarray(done), gamma, lam)
    ref_adv, ref_ret = reference_gae(r, v, nv, term, done, gamma, lam)
    assert adv.shape == ret.shape == r.shape
    np.testing.assert_allclose(np.asarray(adv), ref_adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(ret), ref_ret, rtol=1e-5, atol=1e-5)


def test_float_flags_match_bool_flags():
    r, v, nv, term, done = random_rollout(3)
    a_bool, _ = gae(r, v, nv, jnp.asarray(term), jnp.asarray(done), 0.99, 0.95)
    a_float, _ = gae(r, v, nv, jnp.asarray(term, jnp.float32), jnp.asarray(done, jnp.float32), 0.99, 0.95)
    np.testing.assert_allclose(np.asarray(a_bool), np.asarray(a_float), rtol=1e-6, atol=1e-6)


# Hand-worked, T=3, B=1, gamma=0.9, lambda=0.5 (gamma*lambda = 0.45):
#   rewards = [1, 2, 3], values = [0.5, 1.0, 1.5], next_values = [1.0, 1.5, 2.0]
#   no episode end:
#     delta = [1 + 0.9*1.0 - 0.5, 2 + 0.9*1.5 - 1.0, 3 + 0.9*2.0 - 1.5] = [1.4, 2.35, 3.3]
#     A_2 = 3.3; A_1 = 2.35 + 0.45*3.3 = 3.835; A_0 = 1.4 + 0.45*3.835 = 3.12575
#   terminated at t=1 (term=1, done=1): delta_1 = 2 - 1.0 = 1.0 (no bootstrap)
#     A_2 = 3.3; A_1 = 1.0 (cut); A_0 = 1.4 + 0.45*1.0 = 1.85
#   truncated at t=1 (term=0, done=1): delta_1 = 2.35 (bootstraps)
#     A_2 = 3.3; A_1 = 2.35 (cut); A_0 = 1.4 + 0.45*2.35 = 2.4575
@pytest.mark.parametrize("term,done,expected", [
    ([0, 0, 0], [0, 0, 0], [3.12575, 3.835, 3.3]),
    ([0, 1, 0], [0, 1, 0], [1.85, 1.0, 3.3]),
    ([0, 0, 0], [0, 1, 0], [2.4575, 2.35, 3.3]),
], ids=["no_end", "terminated", "truncated"])
def test_hand_worked_tiny_case(term, done, expected):
    col = lambda x, dt=jnp.float32: jnp.asarray(x, dt)[:, None]
    values = [0.5, 1.0, 1.5]
    adv, ret = gae(col([1.0, 2.0, 3.0]), col(values), col([1.0, 1.5, 2.0]), col(term, bool), col(done, bool),
                   0.9, 0.5)
    np.testing.assert_allclose(np.asarray(adv)[:, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ret)[:, 0], np.add(expected, values), rtol=1e-6)


def test_truncation_bootstraps_and_termination_does_not():
    r, v, nv, term, done = random_rollout(4)
    gamma, lam = 0.99, 0.95
    base, _ = gae(r, v, nv, term, done, gamma, lam)
    t_term, b_term = map(int, np.argwhere(term)[0])
    t_trunc, b_trunc = map(int, np.argwhere(done & ~term)[0])

    nv_term = nv.copy()
    nv_term[t_term, b_term] += 10.0
    changed, _ = gae(r, v, nv_term, term, done, gamma, lam)
    np.testing.assert_array_equal(np.asarray(changed), np.asarray(base))  # V after a termination is ignored

    nv_trunc = nv.copy()
    nv_trunc[t_trunc, b_trunc] += 10.0
    changed, _ = gae(r, v, nv_trunc, term, done, gamma, lam)
    diff = np.asarray(changed) - np.asarray(base)
    np.testing.assert_allclose(diff[t_trunc, b_trunc], gamma * 10.0, rtol=1e-4)  # bootstraps from V(final obs)
    # Nothing after the truncation, nor in other envs, is affected.
    np.testing.assert_array_equal(diff[t_trunc + 1:], 0.0)
    others = np.delete(diff, b_trunc, axis=1)
    np.testing.assert_array_equal(others, 0.0)


def test_lambda_zero_is_one_step_td():
    r, v, nv, term, done = random_rollout(5)
    gamma = 0.97
    adv, ret = gae(r, v, nv, term, done, gamma, 0.0)
    delta = r.astype(np.float64) + gamma * (1.0 - term) * nv - v
    np.testing.assert_allclose(np.asarray(adv), delta, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(ret), delta + v, rtol=1e-5, atol=1e-5)


def test_gamma_zero_is_reward_minus_value():
    r, v, nv, term, done = random_rollout(6)
    adv, ret = gae(r, v, nv, term, done, 0.0, 0.95)
    np.testing.assert_allclose(np.asarray(adv), r - v, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(ret), r, rtol=1e-6, atol=1e-6)


def test_lambda_one_gamma_one_is_monte_carlo():
    rng = np.random.default_rng(7)
    T, B = 25, 3
    r = rng.normal(size=(T, B)).astype(np.float32)
    v = rng.normal(size=(T + 1, B)).astype(np.float32)  # v[T] is the bootstrap value after the rollout
    values, next_values = v[:-1], v[1:]
    no_end = np.zeros((T, B), bool)
    adv, ret = gae(r, values, next_values, no_end, no_end, 1.0, 1.0)
    # Monte Carlo: A_t = sum_{k >= t} r_k + V(s_T) - V(s_t)  (the value terms telescope)
    mc_return = np.cumsum(r[::-1].astype(np.float64), axis=0)[::-1] + v[-1]
    np.testing.assert_allclose(np.asarray(adv), mc_return - values, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(ret), mc_return, rtol=1e-4, atol=1e-4)


def test_under_jit_with_traced_gamma_lambda():
    r, v, nv, term, done = random_rollout(8)
    jitted = jax.jit(gae)
    for gamma, lam in [(0.99, 0.95), (0.8, 0.3)]:
        adv, ret = jitted(r, v, nv, term, done, jnp.float32(gamma), jnp.float32(lam))
        ref_adv, ref_ret = reference_gae(r, v, nv, term, done, gamma, lam)
        np.testing.assert_allclose(np.asarray(adv), ref_adv, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.asarray(ret), ref_ret, rtol=1e-5, atol=1e-5)
