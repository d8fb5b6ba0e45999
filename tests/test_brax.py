"""Brax envs through purejaxppo (the optional brax extra): truncation at the time limit, termination, auto-reset,
env ids, and a small training run. Brax compiles slowly on a CPU: inverted_pendulum is its cheapest physics env."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("brax")

from purejaxppo import PPOConfig, make_train  # noqa: E402
from purejaxppo.core.defaults import ENV_DEFAULTS  # noqa: E402
from purejaxppo.core.envs import check_env_id, make_env  # noqa: E402
from purejaxppo.core.envs.suites.brax import names as brax_env_names  # noqa: E402
from purejaxppo.core.metrics import METRICS  # noqa: E402

ENV_ID = "brax:inverted_pendulum"


@pytest.fixture(scope="module")
def short():
    """inverted_pendulum with a 3-step time limit, and its reset and step jit-compiled once for every test."""
    env = make_env(ENV_ID, episode_length=3)

    def step(key, state, action):
        """`env.step`, with the state's scalars that Brax leaves weakly typed after a step (reward, done) as
        strongly typed as a reset's: stepping a stepped state then reuses the compiled step (the values are the
        same) rather than compiling it again."""
        out = env.step(key, state, action)
        strong = jax.tree.map(lambda after, before: jnp.asarray(after, before.dtype), out[1], state)
        return (out[0], strong, *out[2:])

    return env, jax.jit(env.reset), jax.jit(step)


def _tip_pole(state, angle):
    """`state` with the pole at `angle` radians (inverted_pendulum terminates beyond 0.2)."""
    limited = state.env_state  # the time limit's state; inside it, Brax's
    physics = limited.inner.pipeline_state
    physics = physics.replace(q=physics.q.at[1].set(angle))
    return state.replace(env_state=limited.replace(brax_state=limited.inner.replace(pipeline_state=physics)))


def test_the_state_keeps_the_field_names_older_checkpoints_hold(short):
    """Checkpoints restore arrays by their paths of field names: a Brax run's env state keeps the names it was
    saved under before the envs shared one wrapper stack (`env_state.brax_state`, `env_state.steps`)."""
    env, _, _ = short
    _, state = jax.eval_shape(env.reset, jax.random.key(0))
    top = {jax.tree_util.keystr(path[:2]) for path, _ in jax.tree_util.tree_flatten_with_path(state)[0]}
    assert top == {".env_state.brax_state", ".env_state.steps", ".episode_return", ".episode_length"}


def _with_steps(state, steps):
    """`state` with `steps` steps already taken in its episode."""
    return state.replace(env_state=state.env_state.replace(steps=jnp.int32(steps)))


@pytest.mark.slow
def test_adapter_interface(short):
    env, reset, step = short
    assert env.env_id == ENV_ID and env.params.max_steps_in_episode == 3
    assert env.observation_size == 4 and env.observation_shape == (4,)
    spec = env.action_spec
    assert not spec.discrete and spec.shape == (1,) and spec.low == (-1.0,) and spec.high == (1.0,)
    obs, state = reset(jax.random.key(0))
    out = step(jax.random.key(1), state, jnp.zeros(1))
    obs1, _, reward, terminated, truncated, info = out
    for o in (obs, obs1, info["final_observation"]):
        assert o.dtype == jnp.float32 and o.shape == (4,)
    assert reward.dtype == jnp.float32 and reward.shape == ()
    assert terminated.dtype == truncated.dtype == jnp.bool_


def test_time_limit_truncates_and_resets_fresh(short):
    env, reset, step = short
    action = jnp.array([0.1])
    keys = jax.random.split(jax.random.key(0), 5)
    obs, state = reset(keys[0])
    for t in (1, 2):
        obs, state, reward, terminated, truncated, info = step(keys[t], state, action)
        assert not terminated and not truncated and int(state.env_state.steps) == t
        np.testing.assert_array_equal(info["final_observation"], obs)  # no reset within an episode
        assert reward == 1.0  # inverted_pendulum: 1 per step the pole stays up
    before = state

    obs, state, _, terminated, truncated, info = step(keys[3], before, action)
    assert truncated and not terminated  # the time limit, not a failure: the value target must bootstrap
    assert info["episode_done"] and info["episode_length"] == 3 and info["episode_return"] == 3.0
    # final_observation is where the physics went: the same step without the time limit
    unlimited, *_ = step(keys[3], _with_steps(before, 0), action)
    np.testing.assert_array_equal(info["final_observation"], unlimited)
    # obs starts a fresh episode, reset with the step's key, not a replay of the env's first initial state
    reset_obs, _ = reset(keys[3])
    np.testing.assert_array_equal(obs, reset_obs)
    assert not np.allclose(obs, info["final_observation"])
    assert int(state.env_state.steps) == 0

    obs, state, _, terminated, truncated, info = step(keys[4], state, action)
    assert not terminated and not truncated and int(state.env_state.steps) == 1
    np.testing.assert_array_equal(info["final_observation"], obs)


@pytest.mark.parametrize("steps_before", [0, 2], ids=["mid-episode", "at-the-time-limit"])
def test_falling_terminates_and_is_not_truncation(short, steps_before):
    env, reset, step = short
    _, state = reset(jax.random.key(0))
    state = _with_steps(_tip_pole(state, 0.5), steps_before)
    obs, state, _, terminated, truncated, info = step(jax.random.key(7), state, jnp.zeros(1))
    assert terminated and not truncated  # a true end wins over the time limit on the same step
    assert abs(float(info["final_observation"][1])) > 0.2  # the fallen pole, before the reset
    np.testing.assert_array_equal(obs, reset(jax.random.key(7))[0])
    assert int(state.env_state.steps) == 0


def test_env_ids():
    check_env_id("brax:ant")
    check_env_id("brax:halfcheetah")
    with pytest.raises(ValueError, match=r"did you mean brax:ant\?$"):
        check_env_id("brax:ants")
    with pytest.raises(ValueError, match="brax:halfcheetah"):
        make_env("brax:half_cheetah")
    with pytest.raises(ValueError, match="known brax ids: brax:ant, "):
        check_env_id("brax:xyz")
    with pytest.raises(ValueError, match="could not create env 'brax:ant'.*backend"):
        make_env("brax:ant", backend="nonsense")


def test_tuned_defaults_name_every_brax_physics_env():
    tuned = sorted(env for env in ENV_DEFAULTS if env.startswith("brax:"))
    assert tuned == [f"brax:{name}" for name in brax_env_names() if name != "fast"]  # fast: Brax's test env
    config = PPOConfig.for_env("brax:ant", num_envs=8)
    assert (config.num_envs, config.num_steps, config.num_minibatches, config.update_epochs) == (8, 128, 32, 10)
    assert (config.lr, config.ent_coef) == (3e-4, 0.0)


@pytest.mark.slow
def test_make_train_smoke():
    config = PPOConfig(env=ENV_ID, total_timesteps=64, num_envs=4, num_steps=8, num_minibatches=2)
    out = jax.jit(make_train(config))(jax.random.key(0))
    metrics = jax.tree.map(np.asarray, out.metrics)
    assert set(metrics) == set(METRICS)
    for name, value in metrics.items():
        assert value.shape == (2,), name
        assert np.all(np.isfinite(value)), name
    np.testing.assert_array_equal(metrics["env_steps"], [32, 64])
    assert np.all(metrics["num_episodes"] > 0)  # random actions drop the pole within a few steps
    # reward is 1 per step, so a return is its episode's length
    np.testing.assert_allclose(metrics["episode_return"], metrics["episode_length"], rtol=1e-6)
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(out.params))
