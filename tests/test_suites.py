"""The env suites (each an optional extra the dev extra installs): ids, episode ends as each suite reports them,
observations, masks, a missing extra, and a few training updates of each through the whole toolkit."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxppo import PPOConfig, make_train
from purejaxppo.core.envs import check_env_id, make_base_env, make_env
from purejaxppo.core.envs.custom import check_env


def _step_n(env, actions, key=0):
    """Steps one env through `actions` (one compiled program); returns the first observation and each step's
    outputs."""

    @jax.jit
    def run(key):
        obs0, state = env.reset(key)

        def body(state, inputs):
            out = env.step(*inputs[:1], state, inputs[1])
            return out[1], out

        _, outs = jax.lax.scan(body, state, (jax.random.split(jax.random.key(100), len(actions)),
                                             jnp.asarray(actions, jnp.int32)))
        return obs0, outs

    obs0, outs = run(jax.random.key(key))
    return obs0, [jax.tree.map(lambda x: x[t], outs) for t in range(len(actions))]


# (id, kwargs, an action that never ends the episode, the suite's own observations for the same actions)
def _xminigrid_raw(env, actions):
    @jax.jit
    def run(key):  # a scan: the suite's step compiled once, not once per action
        ts = env.raw.reset(env.suite_params, key)
        return jax.lax.scan(lambda ts, a: (env.raw.step(env.suite_params, ts, a), None), ts,
                            jnp.asarray(actions, jnp.int32))[0]
    ts = run(jax.random.key(0))
    return ts.observation, bool(ts.discount == 1)


def _navix_raw(env, actions):
    @jax.jit
    def run(key):
        ts = env.raw.reset(key)
        return jax.lax.scan(lambda ts, a: (env.raw.step(ts, a), None), ts, jnp.asarray(actions, jnp.int32))[0]
    ts = run(jax.random.key(0))
    return ts.observation, int(ts.step_type) == 1


def _jumanji_raw(env, actions):
    """jumanji itself ends Maze at its time limit with discount 0, a termination: the adapter truncates instead."""
    import jumanji

    own_env = jumanji.make("Maze-v0", time_limit=len(actions))

    @jax.jit
    def run(key):  # the adapter's raw env and jumanji's own, each through the same actions
        walk = lambda suite: jax.lax.scan(lambda carry, a: (suite.step(carry[0], a), None), suite.reset(key),
                                          jnp.asarray(actions, jnp.int32))[0][1]
        return walk(env.raw), walk(own_env)

    ts, own = run(jax.random.key(0))
    return ts.observation, bool(own.last()) and float(own.discount) == 0.0


TRUNCATING = [
    ("xminigrid:MiniGrid-Empty-8x8", {"max_steps": 3}, 1, _xminigrid_raw),
    ("navix:Navix-Empty-5x5-v0", {"max_steps_in_episode": 3}, 0, _navix_raw),
    ("jumanji:Maze-v0", {"max_steps_in_episode": 3}, 0, _jumanji_raw),
]


@pytest.mark.slow
@pytest.mark.parametrize("env_id, kwargs, action, raw", TRUNCATING, ids=[t[0] for t in TRUNCATING])
def test_a_time_limit_is_a_truncation_that_keeps_the_last_observation(env_id, kwargs, action, raw):
    env = make_base_env(env_id, **kwargs)
    check_env(env, env_id)
    obs0, outs = _step_n(env, [action] * 4)
    flags = [(bool(o[3]), bool(o[4])) for o in outs]
    assert flags == [(False, False), (False, False), (False, True), (False, False)]
    suite_obs, suite_ended = raw(env, [action] * 3)
    assert suite_ended  # the suite itself ended the episode there
    np.testing.assert_array_equal(outs[2][5]["final_observation"], env.codec.encode(suite_obs))
    if env_id != "jumanji:Maze-v0":  # fixed start: the next episode starts where the first did
        np.testing.assert_array_equal(outs[2][0], obs0)
    assert not np.array_equal(outs[2][0], outs[2][5]["final_observation"])


@pytest.mark.slow
def test_craftax_tells_its_step_limit_from_a_death():
    env = make_base_env("craftax:Craftax-Classic-Symbolic-v1", max_steps_in_episode=3)
    assert env.suite_params.max_timesteps == 3

    @jax.jit
    def run(key):  # three steps to the limit, then a step from the same first state with no health left
        _, first = env.reset(key)
        dying = first.replace(inner=first.inner.replace(player_health=jnp.zeros_like(first.inner.player_health)))

        def body(state, inputs):  # one step in the program (Craftax's compiles for long), four in the scan
            key, die = inputs
            state = jax.tree.map(lambda d, s: jnp.where(die, d, s), dying, state)
            out = env.step(key, state, jnp.int32(0))
            return out[1], (out[3], out[4])

        keys = jax.random.split(key, 3)
        return jax.lax.scan(body, first, (jnp.concatenate([keys, keys[:1]]), jnp.arange(4) == 3))[1]

    terminated, truncated = run(jax.random.key(0))
    assert list(zip(terminated[:3].tolist(), truncated[:3].tolist())) == [(False, False), (False, False),
                                                                           (False, True)]
    assert bool(terminated[3]) and not bool(truncated[3])  # dead: terminated, its value target not bootstrapped


@pytest.mark.slow
def test_a_termination_is_read_from_the_suites_discount():
    env = make_base_env("jumanji:Snake-v1")
    _, outs = _step_n(env, [0] * 12)  # up, into the wall
    ends = [(bool(o[3]), bool(o[4])) for o in outs]
    assert (True, False) in ends and not any(tr for _, tr in ends)


@pytest.mark.slow
def test_observations_masks_and_action_spaces_of_each_suite():
    snake = make_base_env("jumanji:Snake-v1")
    assert snake.image_shape == (12, 12, 5) and snake.action_spec.mask_size == 4
    assert snake.observation_size == 12 * 12 * 5 + 1 + 4  # grid, step count, then the mask
    mines = make_base_env("jumanji:Minesweeper-v0")  # its mask is over (row, column) pairs: one categorical
    assert mines.action_spec.num_actions == 100 and mines.action_spec.mask_size == 100
    np.testing.assert_array_equal(mines._to_suite(jnp.int32(37)), [3, 7])
    jobs = make_base_env("jumanji:JobShop-v0")  # a mask row per machine: factorized categoricals
    assert jobs.action_spec.nvec and jobs.action_spec.mask_size == len(jobs.action_spec.nvec) * 21
    grid = make_base_env("xminigrid:MiniGrid-Empty-8x8")
    assert grid.image_shape == (7, 7, 2) and grid.action_spec.num_actions == 6
    craftax = make_base_env("craftax:Craftax-Classic-Symbolic-v1")
    assert craftax.image_shape is None and craftax.observation_size == 1345
    assert craftax.params.max_steps_in_episode == 10000


@pytest.mark.slow
def test_a_categorical_over_combinations_steps_in_a_batch():
    """Minesweeper's one categorical over (row, column): each env of a batch reveals the cell its own index
    unravels to (the board is the observation's first 100 entries, -1 where unrevealed)."""
    env = make_env("jumanji:Minesweeper-v0")
    keys = jax.random.split(jax.random.key(0), 3)
    out = jax.jit(lambda keys, actions: env.step_batch(keys, jax.vmap(env.reset)(keys)[1], actions))(
        keys, jnp.array([0, 37, 99]))
    board = np.asarray(out[5]["final_observation"])[:, :100]
    assert [np.flatnonzero(b != -1).tolist() for b in board] == [[0], [37], [99]]


@pytest.mark.parametrize("env_id, message", [
    ("navix:Navix-Empty-55-v0", "navix has no env 'Navix-Empty-55-v0'; did you mean navix:Navix-Empty-5x5-v0"),
    ("xminigrid:Nope", "xminigrid has no env 'Nope'"),
    ("jumanji:Snake-v9", "did you mean jumanji:Snake-v1"),
])
def test_an_unknown_suite_env_is_one_line(env_id, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        check_env_id(env_id)


def test_an_unknown_suite_parameter_names_the_valid_ones():
    with pytest.raises(ValueError, match="has no parameter 'size'; valid names: .*max_steps"):
        make_base_env("xminigrid:MiniGrid-Empty-8x8", size=3)
    with pytest.raises(ValueError, match="has no parameter 'size'; valid names: .*time_limit"):
        make_base_env("jumanji:Snake-v1", size=3)


def test_a_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "craftax", None)  # as if not installed
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "craftax" else real(name, *a))
    with pytest.raises(ValueError, match=r"craftax:Craftax-Classic-Symbolic-v1 needs the craftax extra: "
                                         r"pip install -e '\.\[craftax\]'"):
        make_env("craftax:Craftax-Classic-Symbolic-v1")


SMOKE = [
    ("xminigrid:MiniGrid-Empty-8x8", {}),
    ("navix:Navix-Empty-5x5-v0", {"torso": "cnn", "recurrent": True}),
    ("jumanji:JobShop-v0", {}),
    ("craftax:Craftax-Classic-Symbolic-v1", {}),
]


@pytest.mark.slow
@pytest.mark.parametrize("env_id, extra", SMOKE, ids=[s[0] for s in SMOKE])
def test_a_few_updates_of_each_suite(env_id, extra):
    config = PPOConfig.for_env(env_id, num_envs=2, num_steps=8, total_timesteps=2 * 8 * 2, num_minibatches=2,
                               **extra)
    out = jax.jit(make_train(config))(jax.random.key(0))
    metrics = jax.tree.map(np.asarray, out.metrics)
    assert metrics["env_steps"].tolist() == [16, 32] and np.isfinite(metrics["policy_loss"]).all()
    assert np.isfinite(metrics["value_loss"]).all() and (metrics["entropy"] > 0).all()
