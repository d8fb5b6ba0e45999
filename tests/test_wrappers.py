"""The env wrappers, each on its one concern, against expectations worked out here from a tiny raw env: the time
limit, the auto-reset (per env, and batched with shared fresh episodes), the episode statistics, and the stack
every suite is built as."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxppo.core.envs.suites.base import DEFAULT_TIME_LIMIT, suite_env
from purejaxppo.core.envs.wrappers import (
    AutoReset,
    BatchedReset,
    Encoded,
    EpisodeStatistics,
    Stepped,
    TimeLimit,
    TimeLimitState,
)

GOAL = 5


class Walk:
    """A raw env as a suite's adapter gives it: a position that action 1 moves right, reaching GOAL terminates;
    each episode starts at a random position in [0, 3) and draws a random tag, both from the reset's key, so that
    an observation tells which key started its episode. Observations are a dict of int32 and float32 arrays."""

    env_id = "walk"
    time_limit = None
    action_space = ("discrete", 2)

    def reset(self, key):
        k_pos, k_tag = jax.random.split(key)
        state = (jax.random.randint(k_pos, (), 0, 3), jax.random.uniform(k_tag))
        return {"position": state[0], "tag": state[1]}, state

    def step(self, key, state, action):
        position = state[0] + action
        return Stepped({"position": position, "tag": state[1]}, (position, state[1]), jnp.float32(1.0),
                       position >= GOAL, jnp.bool_(False))


class StillWalk(Walk):
    step_uses_key = False  # as Brax's: nothing random in a step


def first_obs(key):
    """The first observation of the episode `key` resets, worked out without the wrappers: [position, tag]."""
    k_pos, k_tag = jax.random.split(key)
    return np.array([jax.random.randint(k_pos, (), 0, 3), jax.random.uniform(k_tag)], np.float32)


def at(position, tag=0.5, steps=0):
    """A time-limited state of Walk at `position`, `steps` into its episode."""
    return TimeLimitState((jnp.int32(position), jnp.float32(tag)), jnp.int32(steps))


def test_encoded_gives_the_protocols_flat_float32_observations_and_ends():
    env = Encoded(Walk())
    assert env.observation_size == 2 and env.action_spec.num_actions == 2 and env.env_id == "walk"
    obs, state = env.reset(jax.random.key(3))
    assert obs.dtype == jnp.float32 and obs.shape == (2,)
    np.testing.assert_array_equal(obs, first_obs(jax.random.key(3)))
    out = env.step(jax.random.key(0), (jnp.int32(GOAL - 1), jnp.float32(0.25)), jnp.int32(1))
    np.testing.assert_array_equal(out.obs, [GOAL, 0.25])
    assert out.reward.dtype == jnp.float32 and out.terminated.dtype == jnp.bool_ and bool(out.terminated)


def test_the_time_limit_truncates_at_exactly_max_steps_and_does_not_terminate():
    env = TimeLimit(Encoded(Walk()), max_steps=3)
    assert env.params.max_steps_in_episode == 3
    _, state = env.reset(jax.random.key(0))
    assert int(state.steps) == 0
    ends = []
    for t in range(3):  # standing still: only the limit can end the episode
        out = env.step(jax.random.key(t), state, jnp.int32(0))
        state = out.state
        ends.append((bool(out.terminated), bool(out.truncated), int(state.steps)))
    assert ends == [(False, False, 1), (False, False, 2), (False, True, 3)]


def test_a_termination_at_the_time_limit_is_a_termination():
    env = TimeLimit(Encoded(Walk()), max_steps=3)
    out = env.step(jax.random.key(0), at(GOAL - 1, steps=2), jnp.int32(1))  # reaches the goal on step 3
    assert bool(out.terminated) and not bool(out.truncated)


def test_a_suite_without_a_time_limit_gets_the_default():
    assert suite_env(Walk(), share=None).params.max_steps_in_episode == DEFAULT_TIME_LIMIT


def test_auto_reset_starts_the_next_episode_and_keeps_the_final_observation():
    env = AutoReset(TimeLimit(Encoded(Walk()), max_steps=10))
    key = jax.random.key(11)
    obs, state, reward, terminated, truncated, info = env.step(key, at(GOAL - 1, tag=0.25, steps=4), jnp.int32(1))
    assert bool(terminated) and not bool(truncated) and float(reward) == 1.0
    np.testing.assert_array_equal(info["final_observation"], [GOAL, 0.25])  # where the ended episode got to
    np.testing.assert_array_equal(obs, first_obs(jax.random.split(key)[1]))  # reset with the step's second key
    assert int(state.steps) == 0 and int(state.inner[0]) == int(obs[0])

    obs, state, _, terminated, truncated, info = env.step(key, at(1, tag=0.25, steps=4), jnp.int32(1))
    assert not bool(terminated | truncated) and int(state.steps) == 5
    np.testing.assert_array_equal(obs, [2, 0.25])
    np.testing.assert_array_equal(info["final_observation"], obs)  # no reset: the same observation


def test_auto_reset_of_an_env_whose_step_draws_nothing_resets_with_the_whole_key():
    env = AutoReset(TimeLimit(Encoded(StillWalk()), max_steps=2))
    key = jax.random.key(5)
    obs, state, _, terminated, truncated, info = env.step(key, at(0, steps=1), jnp.int32(0))
    assert bool(truncated) and not bool(terminated)
    np.testing.assert_array_equal(obs, first_obs(key))
    np.testing.assert_array_equal(info["final_observation"], [0, 0.5])


def _batch(*positions, steps=0):
    states = [at(p, tag=0.125 * i, steps=steps) for i, p in enumerate(positions)]
    return jax.tree.map(lambda *x: jnp.stack(x), *states)


@pytest.mark.parametrize("share, takes", [(1, [0, 1]), (2, [0, 1]), (4, [0, 0])],
                         ids=["one per env", "one per two envs", "one per four envs"])
def test_batched_reset_hands_fresh_episodes_to_the_envs_that_ended_in_turn(share, takes):
    env = BatchedReset(TimeLimit(Encoded(Walk()), max_steps=10), share)
    keys = jax.random.split(jax.random.key(2), 4)
    assert env.resets_per_step(4) == 4 // share
    # envs 1 and 3 reach the goal; 0 and 2 walk on
    obs, state, _, terminated, _, info = env.step_batch(keys, _batch(0, GOAL - 1, 1, GOAL - 1), jnp.ones(4, jnp.int32))
    assert terminated.tolist() == [False, True, False, True]
    fresh = [first_obs(jax.random.split(k)[1]) for k in keys]  # the i-th fresh episode is reset with key i's
    np.testing.assert_array_equal(obs[1], fresh[takes[0]])
    np.testing.assert_array_equal(obs[3], fresh[takes[1]])
    np.testing.assert_array_equal(np.asarray(obs)[[0, 2]], [[1, 0.0], [2, 0.25]])
    np.testing.assert_array_equal(info["final_observation"], [[1, 0.0], [GOAL, 0.125], [2, 0.25], [GOAL, 0.375]])
    assert state.steps.tolist() == [1, 0, 1, 0]


def test_batched_reset_steps_one_env_as_a_batch_of_one():
    env = BatchedReset(TimeLimit(Encoded(Walk()), max_steps=10))
    key = jax.random.key(9)
    one = env.step(key, at(GOAL - 1, tag=0.0), jnp.int32(1))
    batch = env.step_batch(key[None], _batch(GOAL - 1), jnp.ones(1, jnp.int32))
    for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(batch)):
        np.testing.assert_array_equal(a, b[0])
    np.testing.assert_array_equal(one[0], first_obs(jax.random.split(key)[1]))


def test_auto_reset_of_a_batch_resets_the_envs_that_ended_alone_also_under_a_vmap_over_runs():
    env = AutoReset(TimeLimit(Encoded(Walk()), max_steps=10))
    keys = jax.random.split(jax.random.key(4), 3)
    state, action = _batch(GOAL - 1, 1, GOAL - 1), jnp.array([1, 1, 0], jnp.int32)  # env 0 alone ends
    expected = [first_obs(jax.random.split(keys[0])[1]), [2, 0.125], [GOAL - 1, 0.25]]
    for many in (False, True):  # one branch for the batch; a select under a vmap over runs
        step = jax.vmap(env.step_batch) if many else env.step_batch
        args = jax.tree.map(lambda x: jnp.stack([x, x]), (keys, state, action)) if many else (keys, state, action)
        obs, state_out, _, terminated, _, info = step(*args)
        obs, steps = (obs[1], state_out.steps[1]) if many else (obs, state_out.steps)
        np.testing.assert_array_equal(obs, expected)
        assert steps.tolist() == [0, 1, 1]
    none_ends = env.step_batch(keys, _batch(0, 1, 2), jnp.ones(3, jnp.int32))  # no reset computed
    np.testing.assert_array_equal(none_ends[0], [[1, 0.0], [2, 0.125], [3, 0.25]])


def test_episode_statistics_report_each_episode_as_it_ends():
    env = EpisodeStatistics(AutoReset(TimeLimit(Encoded(Walk()), max_steps=3)))
    _, state = env.reset(jax.random.key(0))
    done = []
    for t in range(7):  # standing still: episodes of exactly 3 steps, reward 1 a step
        _, state, _, _, _, info = env.step(jax.random.key(t), state, jnp.int32(0))
        done.append((bool(info["episode_done"]), float(info["episode_return"]), int(info["episode_length"])))
    assert done == [(False, 0.0, 0), (False, 0.0, 0), (True, 3.0, 3)] * 2 + [(False, 0.0, 0)]
    assert float(state.episode_return) == 1.0 and int(state.episode_length) == 1


def test_the_suites_stack_and_what_it_reads_through_to_the_adapter():
    walk = Walk()
    batched, each = suite_env(walk, share=1), suite_env(walk, share=None)
    assert isinstance(batched, BatchedReset) and isinstance(each, AutoReset)
    for env in (batched, each):
        assert isinstance(env.env, TimeLimit) and isinstance(env.env.env, Encoded) and env.unwrapped is walk
        assert env.env_id == "walk" and env.observation_size == 2 and env.action_spec.num_actions == 2
