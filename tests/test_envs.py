"""The env layer: every gymnax env through make_env, episode statistics, truncation and auto-reset."""

import re
import subprocess
import sys

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import command_limit

from purejaxppo.core.config import PPOConfig
from purejaxppo.core.envs import make_env
from purejaxppo.core.train import make_train

DOWNLOADS = "MNISTBandit-bsuite"  # fetches MNIST on creation
ENV_IDS = [e for e in gymnax.registered_envs if e != DOWNLOADS]


def _zero_actions(env, n):
    spec = env.action_spec
    if spec.discrete:
        return jnp.zeros((n,), jnp.int32)
    return jnp.zeros((n,) + spec.shape, jnp.float32)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reset_and_step_a_vmapped_batch(env_id):
    env = make_env(env_id)
    spec = env.action_spec
    assert isinstance(spec.discrete, bool)
    if spec.discrete:
        assert spec.num_actions >= 2 and spec.size == spec.num_actions
    else:
        assert len(spec.shape) >= 1 and spec.size == int(np.prod(spec.shape))
        assert len(spec.low) == len(spec.high) == spec.size
        assert all(lo < hi for lo, hi in zip(spec.low, spec.high))

    @jax.jit
    def reset_and_step(key):
        k_reset, k_step = jax.random.split(key)
        obs0, state = jax.vmap(env.reset)(jax.random.split(k_reset, 2))
        out = jax.vmap(env.step)(jax.random.split(k_step, 2), state, _zero_actions(env, 2))
        return obs0, out

    obs0, (obs, state, reward, terminated, truncated, info) = reset_and_step(jax.random.PRNGKey(0))
    for o in (obs0, obs, info["final_observation"]):
        assert o.dtype == jnp.float32
        assert o.shape == (2, env.observation_size)
        assert np.all(np.isfinite(np.asarray(o)))
    assert reward.dtype == jnp.float32 and reward.shape == (2,)
    assert terminated.dtype == jnp.bool_ and terminated.shape == (2,)
    assert truncated.dtype == jnp.bool_ and truncated.shape == (2,)
    assert info["episode_done"].shape == (2,)
    np.testing.assert_array_equal(np.asarray(info["episode_done"]), np.asarray(terminated | truncated))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_every_env_can_be_made_inside_a_trace(env_id):
    """`make_train` makes its env inside the traced function; FourRooms, MetaMaze, PointRobot, Reacher and
    Swimmer build their maps and spaces with jnp and read them back in Python, which a trace refuses."""
    outside = make_env(env_id)

    def made_inside(key):
        env = make_env(env_id)
        assert env.action_spec == outside.action_spec and env.observation_size == outside.observation_size
        obs, _ = env.reset(key)
        return obs

    assert jax.eval_shape(made_inside, jax.random.key(0)).shape == (outside.observation_size,)


def test_an_env_that_fails_on_creation_is_one_value_error_naming_it_and_why(monkeypatch):
    """MNISTBandit-bsuite downloads MNIST when it is created: offline, gymnax raises whatever its download
    raised. purejaxppo turns any such failure into a ValueError that names the env and the cause."""
    def offline(env_id, **kwargs):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(gymnax, "make", offline)
    with pytest.raises(ValueError, match=rf"^could not create env '{DOWNLOADS}': ConnectionError: no route to host$"):
        make_env(DOWNLOADS)


def test_unknown_env_id_suggests_close_match():
    with pytest.raises(ValueError, match="CartPole-v1"):
        make_env("CartPole-v2")
    with pytest.raises(ValueError, match="Pendulum-v1"):
        make_env("pendulum-v1")


def test_brax_id_without_the_brax_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "brax", None)  # importing brax fails, as where the extra is not installed
    message = re.escape("brax:ant needs the brax extra: pip install -e '.[brax]'")
    with pytest.raises(ValueError, match=message):
        make_env("brax:ant")
    with pytest.raises(ValueError, match=message):
        make_train(PPOConfig(env="brax:ant"))


def _run(env, action, num_steps, seed=0):
    """One env stepped num_steps times with a fixed action under lax.scan."""

    @jax.jit
    def go(key):
        key_reset, key = jax.random.split(key)
        obs, state = env.reset(key_reset)

        def step(carry, key):
            state, obs = carry
            next_obs, state, reward, terminated, truncated, info = env.step(key, state, action)
            return (state, next_obs), {**info, "obs": obs, "next_obs": next_obs, "reward": reward,
                                       "terminated": terminated, "truncated": truncated}

        return jax.lax.scan(step, (state, obs), jax.random.split(key, num_steps))[1]

    return jax.tree.map(np.asarray, go(jax.random.PRNGKey(seed)))


def test_episode_statistics_cartpole():
    tr = _run(make_env("CartPole-v1"), jnp.int32(0), 100)
    np.testing.assert_array_equal(tr["reward"], 1.0)
    since_last_end, steps, episodes = 0.0, 0, 0
    for t in range(100):
        since_last_end += float(tr["reward"][t])
        steps += 1
        if tr["episode_done"][t]:
            episodes += 1
            assert tr["episode_return"][t] == since_last_end
            assert tr["episode_length"][t] == steps
            assert tr["episode_return"][t] == tr["episode_length"][t]  # reward 1 per step
            assert tr["terminated"][t]  # pole falls long before the 500-step limit
            since_last_end, steps = 0.0, 0
        else:
            assert tr["episode_return"][t] == 0 and tr["episode_length"][t] == 0
    assert episodes >= 3  # always pushing left ends an episode in ~10 steps


def test_pendulum_truncates_at_200_steps():
    tr = _run(make_env("Pendulum-v1"), jnp.zeros((1,), jnp.float32), 450)
    done_steps = np.flatnonzero(tr["episode_done"])
    np.testing.assert_array_equal(done_steps, [199, 399])
    assert not tr["terminated"].any()
    np.testing.assert_array_equal(np.flatnonzero(tr["truncated"]), [199, 399])
    np.testing.assert_array_equal(tr["episode_length"][done_steps], [200, 200])
    # episode_return is the sum of the episode's rewards
    np.testing.assert_allclose(tr["episode_return"][199], tr["reward"][:200].sum(), rtol=1e-4)
    np.testing.assert_allclose(tr["episode_return"][399], tr["reward"][200:400].sum(), rtol=1e-4)
    # auto-reset: at the end the returned obs is the next episode's first, final_observation the ended one's last
    for t in done_steps:
        assert not np.allclose(tr["final_observation"][t], tr["next_obs"][t])
        np.testing.assert_array_equal(tr["obs"][t + 1], tr["next_obs"][t])
    not_done = ~tr["episode_done"]
    np.testing.assert_array_equal(tr["final_observation"][not_done], tr["next_obs"][not_done])
    # the ended episode's last observation continues its dynamics: cos^2 + sin^2 = 1 and |theta_dot| <= 8
    last = tr["final_observation"][199]
    np.testing.assert_allclose(last[0] ** 2 + last[1] ** 2, 1.0, rtol=1e-5)
    assert abs(last[2]) <= 8.0


def test_continuous_action_reshaped_for_scalar_box():
    """Pendulum's Box has shape (1,); a policy's [1]-vector action must step the env like the raw gymnax call."""
    env = make_env("Pendulum-v1")
    key = jax.random.PRNGKey(3)
    obs, state = env.reset(key)
    action = jnp.array([1.5], jnp.float32)
    obs1, _, r1, *_ = env.step(key, state, action)
    raw_obs, _, raw_r, *_ = env.env.env.step(key, state.env_state, action, env.env.params)
    np.testing.assert_allclose(np.asarray(obs1), np.asarray(raw_obs).ravel(), rtol=1e-6)
    np.testing.assert_allclose(float(r1), float(raw_r), rtol=1e-6)


def test_a_discrete_observation_is_one_hot():
    """FrozenLake observes its cell as one index: the policy sees that index one-hot, at every step."""
    env = make_env("FrozenLake-misc")
    assert env.observation_size == 16
    obs, state = env.reset(jax.random.PRNGKey(0))
    for t in range(5):
        raw_cell = int(state.env_state.position)
        np.testing.assert_array_equal(np.asarray(obs), np.eye(16, dtype=np.float32)[raw_cell])
        obs, state, *_ = env.step(jax.random.PRNGKey(t), state, jnp.int32(t % 4))


def test_the_commands_defer_renderer_imports_until_used():
    """gymnax imports matplotlib.pyplot and seaborn for its renderers; the commands defer them (seconds of
    start-up) until first used, when they are the real modules."""
    code = """
import sys
from purejaxppo.cli.startup import defer_renderer_imports
defer_renderer_imports()
import purejaxppo.scale.sweep
assert "pandas" not in sys.modules and "matplotlib.figure" not in sys.modules, "imported at start-up"
import seaborn as sns
assert len(sns.color_palette("cubehelix", 3)) == 3 and "pandas" in sys.modules
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
assert type(sys.modules["matplotlib.pyplot"]).__name__ == "module" and plt.figure().number == 1
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=command_limit())
    assert result.returncode == 0, result.stderr


def test_a_process_that_imports_the_library_gets_the_real_modules():
    """The stand-ins live only in the commands' own processes: a notebook that imports purejaxppo and trains has
    the real matplotlib.pyplot in sys.modules, never a stand-in."""
    code = """
import sys
import jax
from purejaxppo import PPOConfig, make_train
make_train(PPOConfig(total_timesteps=512))
print(type(sys.modules["matplotlib.pyplot"]).__name__, type(sys.modules["seaborn"]).__name__)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=command_limit())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["module", "module"]


def _walk(step_batch, env, key, steps: int = 40, n: int = 6):
    """`steps` steps of `n` envs with random actions through `step_batch`: every step's values, stacked."""
    spec = env.action_spec

    def step(carry, key):
        state = carry
        k_action, k_env = jax.random.split(key)
        if spec.discrete:
            action = jax.random.randint(k_action, (n,), 0, spec.num_actions)
        else:
            action = jax.random.uniform(k_action, (n,) + spec.shape, minval=-1.0, maxval=1.0)
        obs, state, reward, terminated, truncated, info = step_batch(jax.random.split(k_env, n), state, action)
        return state, (obs, reward, terminated, truncated, info["final_observation"])

    def walk(key):  # one program: the resets too
        _, state = jax.vmap(env.reset)(jax.random.split(key, n))
        return jax.lax.scan(step, state, jax.random.split(key, steps))[1]

    return jax.jit(walk)(key)


@pytest.mark.parametrize("env_id, kwargs", [("CartPole-v1", {}), ("Pendulum-v1", {"max_steps_in_episode": 15}),
                                            ("Breakout-MinAtar", {}), ("DeepSea-bsuite", {})])
def test_a_batched_step_equals_each_envs_own_step_with_and_without_episode_ends(env_id, kwargs):
    """`FunctionalEnv.step_batch` computes a gymnax env's resets only at steps where an episode ended; the values
    are gymnax's own `step`'s, env by env (DeepSea, which has its own step, is vmapped as it is)."""
    env = make_env(env_id, **kwargs).env
    key = jax.random.key(3)
    batched = _walk(env.step_batch, env, key)
    each = _walk(jax.vmap(env.step), env, key)
    terminated, truncated = batched[2], batched[3]
    assert bool((terminated | truncated).any()) and not bool((terminated | truncated).all())  # both kinds of step
    for a, b in zip(batched, each):
        np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=1e-6, atol=1e-6)
