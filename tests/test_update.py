"""The update's options that change how many steps it takes and how hard it pulls: KL early stop, the KL penalty."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from purejaxppo.core.config import PPOConfig
from purejaxppo.core.envs import make_env
from purejaxppo.core.losses import loss_hyperparams, ppo_loss
from purejaxppo.core.objectives import make_objective
from purejaxppo.core.policy_kinds import make_policy_kind
from purejaxppo.core.records import Batch
from purejaxppo.core.shuffle import permutation
from purejaxppo.core.train import make_components, make_train
from purejaxppo.core.update import make_early_stop, update


def constructed_batch(config, n=256):
    """A batch from a random CartPole-shaped policy: its log-probs are those of `params`, so the first
    minibatch step starts at ratio 1 (KL 0)."""
    policy = make_policy_kind(config, make_env(config.env).action_spec)
    k_obs, k_init, k_act, k_adv = jax.random.split(jax.random.key(0), 4)
    obs = jax.random.normal(k_obs, (n, 4))
    params = policy.network.init(k_init, obs)
    pi, values = policy.network.apply(params, obs)
    action = pi.sample(seed=k_act)
    advantages = jax.random.normal(k_adv, (n,))
    batch = Batch(obs=obs, action=action, log_prob=pi.log_prob(action), value=values, advantages=advantages,
                  returns=values + advantages)
    return policy, params, batch


@pytest.mark.slow
def test_kl_early_stop_keeps_only_the_steps_before_the_kl_exceeds_the_target():
    config = PPOConfig(num_envs=4, num_steps=64, num_minibatches=4, update_epochs=4, kl_early_stop=True,
                       kl_target=1e-7, lr=1e-2, anneal_lr=False)
    policy, params, batch = constructed_batch(config)
    parts = make_components(config)
    tx, key = parts.tx, jax.random.key(1)

    # the config an argument: kl_target, one of its numeric leaves, is traced, so both targets share one compile
    @jax.jit
    def run(config, p, b):
        return update(p, tx.init(p), b, key, loss=parts.loss(jnp.float32(1.0)), policy=policy, tx=tx,
                      epochs=config.update_epochs, num_minibatches=config.num_minibatches,
                      early_stop=make_early_stop(config))

    stopped_params, _, metrics = run(config, params, batch)
    assert int(metrics["grad_steps"]) == 1  # the second step sees the first step's KL, far above 1e-7

    # The one step taken: the first minibatch of the first epoch, as `update` orders them.
    order = permutation(jax.random.split(key, config.update_epochs)[0], config.batch_size)
    first = jax.tree.map(lambda x: x[order[:config.minibatch_size]], batch)

    @jax.jit  # one compile, rather than each operation's own
    def one_step(params):
        grads = jax.grad(lambda p: ppo_loss(p, first, jnp.float32(1.0), evaluate=policy.evaluate,
                                            objective=make_objective(config), hp=loss_hyperparams(config))[0])(params)
        updates, _ = tx.update(grads, tx.init(params), params)
        return optax.apply_updates(params, updates)

    expected = one_step(params)
    # (steps are ~lr = 1e-2 each: 1e-6 tells one step from two)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), stopped_params, expected)

    loose = dataclasses.replace(config, kl_target=10.0)
    _, _, metrics = run(loose, params, batch)
    assert int(metrics["grad_steps"]) == config.update_epochs * config.num_minibatches


@pytest.mark.slow
def test_without_early_stop_every_step_runs_in_training():
    config = PPOConfig(total_timesteps=512 * 3)
    out = jax.jit(make_train(config))(jax.random.key(0))
    np.testing.assert_array_equal(out.metrics["grad_steps"], 16)
    stopped = jax.jit(make_train(dataclasses.replace(config, kl_early_stop=True, kl_target=1e-6)))(
        jax.random.key(0))
    assert np.all(stopped.metrics["grad_steps"] < 16) and np.all(stopped.metrics["grad_steps"] >= 1)


@jax.jit
def train_config(config: PPOConfig, key: jax.Array):
    """make_train(config)(key) with the config an argument: configs that differ only in numeric fields (e.g.
    kl_target) share one compile."""
    return make_train(config)(key)


@pytest.mark.slow
@pytest.mark.parametrize("kl_target, direction", [(1e-6, 1), (1.0, -1)])
def test_kl_beta_follows_the_measured_kl(kl_target, direction):
    config = PPOConfig(objective="kl_penalty", kl_target=kl_target, kl_beta=1.0, num_steps=16, num_minibatches=2,
                       update_epochs=2, total_timesteps=4 * 16 * 4)
    out = train_config(config, jax.random.key(0))
    beta, kl = np.asarray(out.metrics["kl_beta"]), np.asarray(out.metrics["kl"])
    assert beta[0] == 1.0
    # each update's coefficient is the previous one doubled above the band, halved below it
    expected = np.where(kl > 1.5 * kl_target, 2 * beta, np.where(kl < kl_target / 1.5, beta / 2, beta))
    np.testing.assert_allclose(beta[1:], expected[:-1], rtol=1e-6)
    np.testing.assert_allclose(float(out.state.kl_beta), expected[-1], rtol=1e-6)
    assert np.all(np.sign(np.diff(beta)) == direction)  # a tiny target only raises it, a huge one only lowers it
    assert np.all(kl > 0) and np.all(np.isfinite(out.metrics["policy_loss"]))
