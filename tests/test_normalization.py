"""Observation and reward normalization: the running statistics against numpy, and their effect in training."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxppo.core.config import PPOConfig
from purejaxppo.core.envs import GymnaxEnv, make_env
from purejaxppo.core.normalization import discounted_returns, init_stats, normalize_obs, scale_rewards, update_stats
from purejaxppo.core.policy_kinds import make_policy_kind
from purejaxppo.core.rollout import rollout
from purejaxppo.core.train import make_train, make_trainer
from purejaxppo.io.policy import Policy


def test_running_stats_merged_in_chunks_equal_numpy_over_everything():
    rng = np.random.default_rng(0)
    chunks = [rng.normal(loc=[3.0, -50.0], scale=[0.1, 20.0], size=(n, 2)).astype(np.float32) for n in (1, 7, 64)]
    stats = init_stats((2,))
    for chunk in chunks:
        stats = update_stats(stats, jnp.asarray(chunk))
    everything = np.concatenate(chunks)
    np.testing.assert_allclose(stats.mean, everything.mean(0), rtol=1e-4)
    # up to the prior (mean 0, variance 1) that init_stats weighs as 1e-4 of a sample
    np.testing.assert_allclose(stats.var, everything.var(0), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(float(stats.count), len(everything), rtol=1e-5)


def test_normalize_obs_standardizes_and_clips():
    stats = init_stats((2,)).replace(mean=jnp.array([1.0, -2.0]), var=jnp.array([4.0, 0.01]))
    out = normalize_obs(jnp.array([[3.0, -2.0], [1.0, 5.0]]), stats)
    np.testing.assert_allclose(out, [[1.0, 0.0], [0.0, 10.0]], rtol=1e-5)  # (5 + 2) / 0.1 = 70, clipped to 10


def test_discounted_returns_against_a_loop():
    rng = np.random.default_rng(1)
    rewards = rng.normal(size=(6, 3)).astype(np.float32)
    dones = rng.random((6, 3)) < 0.3
    start = np.array([0.5, -1.0, 2.0], np.float32)
    last, per_step = discounted_returns(jnp.asarray(rewards), jnp.asarray(dones), jnp.asarray(start), 0.9)
    g, expected = start.copy(), np.zeros_like(rewards)
    for t in range(6):
        g = rewards[t] + 0.9 * g
        expected[t] = g
        g = np.where(dones[t], 0.0, g)
    np.testing.assert_allclose(per_step, expected, rtol=1e-5)
    np.testing.assert_allclose(last, g, rtol=1e-5)


def test_scale_rewards_divides_by_return_std_without_centring():
    stats = init_stats().replace(mean=jnp.float32(100.0), var=jnp.float32(25.0))
    np.testing.assert_allclose(scale_rewards(jnp.array([1.0, -5.0, 1000.0]), stats), [0.2, -1.0, 10.0], rtol=1e-5)


@pytest.mark.slow
def test_training_with_normalized_observations_feeds_the_network_standardized_inputs():
    # MountainCar's raw velocity has std ~0.01 and its position mean ~-0.5: far from standardized.
    config = PPOConfig(env="MountainCar-v0", num_envs=8, num_steps=64, num_minibatches=2, update_epochs=1,
                       total_timesteps=8 * 64 * 6, normalize_obs=True)
    trainer = make_trainer(config)
    state = trainer.init(jax.random.key(0))
    step = jax.jit(trainer.update_step)
    for _ in range(config.num_updates):
        state, _ = step(state)
    env = make_env(config.env)
    policy = make_policy_kind(config, env.action_spec)
    preprocess = lambda obs: normalize_obs(obs, state.norm.obs)
    walk = jax.jit(lambda params, envs, key: rollout(env, policy, params, envs, key, 64, preprocess))
    _, tr = walk(state.params, state.env, jax.random.key(1))
    raw = np.asarray(tr.obs).reshape(-1, 2)
    seen = np.asarray(preprocess(tr.obs)).reshape(-1, 2)
    assert raw[:, 1].std() < 0.05  # without normalization the network would see this
    np.testing.assert_allclose(seen.mean(0), 0.0, atol=0.5)
    np.testing.assert_allclose(seen.std(0), 1.0, atol=0.5)
    assert float(state.norm.obs.count) >= 8 * 64 * 6  # every observation of every update, merged over envs


@pytest.mark.slow
def test_reward_normalization_scales_the_targets_but_logs_raw_returns():
    base = PPOConfig(env="CartPole-v1", num_envs=4, num_steps=128, total_timesteps=512 * 8)
    plain = jax.jit(make_train(base))(jax.random.key(0))
    scaled = jax.jit(make_train(dataclasses.replace(base, normalize_reward=True)))(jax.random.key(0))
    # CartPole pays 1 a step: a logged return equal to the episode's length is the raw return.
    for out in (plain, scaled):
        ended = ~np.isnan(np.asarray(out.metrics["episode_return"]))
        np.testing.assert_allclose(np.asarray(out.metrics["episode_return"])[ended],
                                   np.asarray(out.metrics["episode_length"])[ended], rtol=1e-5)
    # Discounted returns of a +1-per-step env reach several units: their std scales rewards down.
    assert float(scaled.state.norm.reward.var) > 1.0
    assert float(plain.state.norm.reward.var) == 1.0  # untouched when off
    # Targets on the scaled rewards are smaller, so the critic's loss is too.
    assert np.mean(scaled.metrics["value_loss"]) < 0.5 * np.mean(plain.metrics["value_loss"])


def test_policy_applies_the_saved_observation_statistics():
    config = PPOConfig(env="CartPole-v1", normalize_obs=True)
    env = GymnaxEnv(config.env)
    params = make_policy_kind(config, env.action_spec).network.init(jax.random.key(0), jnp.zeros(4))
    stats = init_stats((4,)).replace(mean=jnp.array([0.0, 0.0, 0.2, 0.0]), var=jnp.array([1.0, 4.0, 0.01, 9.0]))
    policy = Policy(config, params, env, obs_stats=stats)
    obs = jnp.array([[0.1, -0.5, 0.25, 1.0], [-0.2, 0.3, 0.1, -2.0]])
    expected, _ = make_policy_kind(config, env.action_spec).network.apply(params, normalize_obs(obs, stats))
    np.testing.assert_allclose(policy.distribution(obs).logits, expected.logits, rtol=1e-6)
    unnormalized, _ = make_policy_kind(config, env.action_spec).network.apply(params, obs)
    assert not np.allclose(policy.distribution(obs).logits, unnormalized.logits)
