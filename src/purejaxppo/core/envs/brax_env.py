"""Brax envs (the optional `brax` extra) behind the `Env` protocol (`purejaxppo.core.envs.base`).

Ids are "brax:<name>", <name> from Brax's registry: "brax:ant", "brax:halfcheetah", "brax:hopper", ... A Brax env
signals a single `done` and has no time limit; `BraxEnv` adds what PPO needs on top:

- a time limit of `episode_length` steps (Brax's default, 1000): an episode that reaches it without terminating
  is truncated, not terminated, so its value target bootstraps from V(final observation);
- auto-reset to a fresh random initial state drawn with the step's key, the pre-reset observation kept in
  `info["final_observation"]`.

Brax's own wrappers (`brax.envs.training`) do neither: their auto-reset returns every episode of an env to that
env's first initial state and drops the pre-reset observation.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from brax import envs as brax_registry
from flax import struct

from purejaxppo.core.envs.base import BRAX_PREFIX, ActionSpec
from purejaxppo.core.envs.naming import create, unknown_env_id

DEFAULT_EPISODE_LENGTH = 1000


def brax_env_names() -> list[str]:
    """The names Brax registers, sorted; "brax:" + a name is an env id."""
    # Brax keeps its registry in a module-level dict and offers no public way to list it.
    return sorted(brax_registry._envs)


def check_brax_env_id(env_id: str) -> None:
    """Raises ValueError for a "brax:<name>" id whose name Brax does not register, naming the closest ones."""
    names = brax_env_names()
    if env_id.removeprefix(BRAX_PREFIX) not in names:
        raise unknown_env_id(env_id, names, "brax", BRAX_PREFIX)


class BraxParams(NamedTuple):
    """The part of gymnax's env params that purejaxppo reads (`evaluate` bounds its episodes by it)."""

    max_steps_in_episode: int


@struct.dataclass
class BraxEnvState:
    brax_state: Any  # brax.envs.State: physics state, obs, reward, done, metrics
    steps: jax.Array  # steps taken in the current episode, int32 scalar


class BraxEnv:
    """One Brax env with a time limit and auto-reset; float32 observations `[observation_size]`, actions
    `[action_size]` in [-1, 1], float32 rewards."""

    def __init__(self, env_id: str, episode_length: int = DEFAULT_EPISODE_LENGTH, **brax_kwargs: Any):
        """`brax_kwargs` go to the Brax env's constructor, e.g. `backend="spring"` (default: the env's own,
        "generalized" for every physics env)."""
        check_brax_env_id(env_id)
        if isinstance(episode_length, bool) or not isinstance(episode_length, numbers.Integral) or episode_length < 1:
            raise ValueError(f"episode_length={episode_length!r} is invalid: must be a positive integer")
        self.env = create(env_id, brax_registry.get_environment, env_id.removeprefix(BRAX_PREFIX), **brax_kwargs)
        # Brax's `observation_size` runs a reset op by op (seconds); tracing one gives the shape at once.
        obs = jax.eval_shape(self.env.reset, jax.random.key(0)).obs
        if not isinstance(obs, jax.ShapeDtypeStruct) or len(obs.shape) != 1:
            raise ValueError(f"env {env_id!r} has observations of type {type(obs).__name__} with shape "
                             f"{getattr(obs, 'shape', None)}; purejaxppo supports flat vectors")
        self.env_id = env_id
        self.episode_length = int(episode_length)
        self.params = BraxParams(max_steps_in_episode=self.episode_length)
        size = self.env.action_size
        self.action_spec = ActionSpec(discrete=False, shape=(size,), low=(-1.0,) * size, high=(1.0,) * size)
        self.observation_shape: tuple[int, ...] = tuple(obs.shape)
        self.observation_size: int = obs.shape[0]

    def reset(self, key: jax.Array) -> tuple[jax.Array, BraxEnvState]:
        """A fresh episode: its first observation `[observation_size]` and state."""
        brax_state = self.env.reset(key)
        return brax_state.obs.astype(jnp.float32), BraxEnvState(brax_state, jnp.int32(0))

    def step(self, key: jax.Array, state: BraxEnvState, action: jax.Array):
        """One step with `action` `[action_size]`: `(obs, state, reward, terminated, truncated, info)`.

        Terminated: Brax's `done` (e.g. the ant fell). Truncated: the episode reached `episode_length` steps
        without terminating. When either ends the episode, `obs` and `state` start the next one, reset with `key`,
        and `info["final_observation"]` is the ended episode's last observation (else it equals `obs`).
        """
        stepped = self.env.step(state.brax_state, action)
        steps = state.steps + 1
        terminated = jnp.asarray(stepped.done) > 0
        truncated = (steps >= self.episode_length) & ~terminated
        done = terminated | truncated
        # Reset on every step and keep it where done: vmapped over envs, a branch would compute both sides anyway.
        reset_obs, reset_state = self.reset(key)
        next_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state,
                                  BraxEnvState(stepped, steps))
        final_obs = stepped.obs.astype(jnp.float32)
        obs = jnp.where(done, reset_obs, final_obs)
        return (obs, next_state, jnp.asarray(stepped.reward, jnp.float32), terminated, truncated,
                {"final_observation": final_obs})
