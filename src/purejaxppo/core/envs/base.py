"""The `Env` protocol every env adapter implements, the `ActionSpec` it declares, and the episode statistics
wrapper PPO trains through.

An `Env` is ONE env with gymnax 1.x's functional signature, without env params (an adapter holds its own):

    reset(key) -> (obs, state)
    step(key, state, action) -> (obs, state, reward, terminated, truncated, info)

Observations are flat float32 `[observation_size]`, rewards float32 `[]`, terminated and truncated bool `[]`.
`step` auto-resets: after an episode ends, `obs` is the first observation of the next episode and
`info["final_observation"]` the last observation of the ended one, which a truncated episode's value target
bootstraps from. Rollouts `jax.vmap` an env over a batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

BRAX_PREFIX = "brax:"
"""Ids of Brax envs are this prefix and a name from Brax's registry ("brax:ant"); other ids are gymnax's."""


@dataclass(frozen=True)
class ActionSpec:
    """What the policy must output: `num_actions` logits (discrete) or a `shape` vector within [low, high]."""

    discrete: bool
    num_actions: int = 0
    shape: tuple[int, ...] = ()
    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()

    @property
    def size(self) -> int:
        """Policy-head width: logits for discrete actions, means for continuous ones."""
        return self.num_actions if self.discrete else int(np.prod(self.shape))


@runtime_checkable
class Env(Protocol):
    """One environment as purejaxppo steps it (see the module docstring)."""

    env_id: str
    action_spec: ActionSpec
    observation_shape: tuple[int, ...]  # as the suite returns observations, before flattening
    observation_size: int  # the flat observation's length
    params: Any  # has `max_steps_in_episode`, the time limit that bounds every episode

    def reset(self, key: jax.Array) -> tuple[jax.Array, Any]: ...

    def step(self, key: jax.Array, state: Any, action: jax.Array
             ) -> tuple[jax.Array, Any, jax.Array, jax.Array, jax.Array, dict[str, Any]]: ...


@struct.dataclass
class EpisodeStatsState:
    env_state: Any
    episode_return: jax.Array
    episode_length: jax.Array


class EpisodeStatistics:
    """Adds the return and length of each episode as it ends.

    `info["episode_return"]` and `info["episode_length"]` are valid where `info["episode_done"]`; elsewhere 0.
    """

    def __init__(self, env: Env):
        self.env = env

    def __getattr__(self, name: str):
        return getattr(self.env, name)

    def reset(self, key: jax.Array):
        obs, env_state = self.env.reset(key)
        return obs, EpisodeStatsState(env_state, jnp.float32(0.0), jnp.int32(0))

    def step(self, key: jax.Array, state: EpisodeStatsState, action: jax.Array):
        obs, env_state, reward, terminated, truncated, info = self.env.step(key, state.env_state, action)
        done = terminated | truncated
        ep_return = state.episode_return + reward
        ep_length = state.episode_length + 1
        info = {**info, "episode_done": done,
                "episode_return": jnp.where(done, ep_return, 0.0),
                "episode_length": jnp.where(done, ep_length, 0)}
        state = EpisodeStatsState(env_state, jnp.where(done, 0.0, ep_return), jnp.where(done, 0, ep_length))
        return obs, state, reward, terminated, truncated, info
