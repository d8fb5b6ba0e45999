"""Environments: gymnax envs behind a small functional interface, with the wrappers PPO needs.

Every env here has the gymnax 1.x signature
    reset(key) -> (obs, state)
    step(key, state, action) -> (obs, state, reward, terminated, truncated, info)
for ONE env; rollouts `jax.vmap` it over a batch. `step` auto-resets: after an episode ends, `obs` is the first
observation of the next episode and `info["final_observation"]` the last observation of the ended one, which
is what a truncated episode's value target bootstraps from.
"""

from __future__ import annotations

import difflib
import importlib
import sys
import types
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


class _DeferredModule(types.ModuleType):
    """Stands in `sys.modules` for a module until one of its attributes is first read, then imports it."""

    def __getattr__(self, attr: str):
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        real = importlib.import_module(self.__name__)
        self.__dict__.update(real.__dict__)  # later reads through this stand-in find everything directly
        return getattr(real, attr)


# gymnax's renderers import matplotlib.pyplot and seaborn (with pandas and scipy) when gymnax is imported: ~2 s
# of every process's start that training never uses. They are imported when a renderer first needs them.
for _name in ("matplotlib.pyplot", "seaborn"):
    sys.modules.setdefault(_name, _DeferredModule(_name))

import gymnax  # noqa: E402
from gymnax.environments import spaces  # noqa: E402


BRAX_PREFIX = "brax:"


def _brax_envs(env_id: str):
    """`purejaxppo.brax_envs`, imported only for a brax id: brax is an optional extra, and slow to import."""
    try:
        import brax  # noqa: F401
    except ModuleNotFoundError as e:
        raise ValueError(f"{env_id} needs the brax extra: pip install -e '.[brax]'") from e
    from purejaxppo import brax_envs

    return brax_envs


def check_env_id(env_id: str) -> None:
    """Raises ValueError for an id gymnax (or, for "brax:<name>", Brax) does not register, naming the closest
    ones."""
    if env_id.startswith(BRAX_PREFIX):
        _brax_envs(env_id).check_brax_env_id(env_id)
        return
    if env_id in gymnax.registered_envs:
        return
    close = difflib.get_close_matches(env_id, gymnax.registered_envs, n=3, cutoff=0.4)
    hint = f"did you mean {', '.join(close)}?" if close else f"known ids: {', '.join(gymnax.registered_envs)}"
    raise ValueError(f"unknown env id {env_id!r}: {hint}")


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


class GymnaxEnv:
    """One gymnax env with its default params; float32 flat observations and float32 rewards."""

    def __init__(self, env_id: str, **env_kwargs: Any):
        check_env_id(env_id)
        try:
            self.env, self.params = gymnax.make(env_id, **env_kwargs)
        except Exception as e:  # e.g. MNISTBandit-bsuite downloads its data set on creation
            raise ValueError(f"could not create env {env_id!r}: {type(e).__name__}: {e}") from e
        self.env_id = env_id
        space = self.env.action_space(self.params)
        if isinstance(space, spaces.Discrete):
            self.action_spec = ActionSpec(discrete=True, num_actions=int(space.n))
        elif isinstance(space, spaces.Box):
            shape = tuple(space.shape) or (1,)
            self.action_spec = ActionSpec(
                discrete=False, shape=shape,
                low=tuple(np.broadcast_to(np.asarray(space.low, np.float32), shape).ravel().tolist()),
                high=tuple(np.broadcast_to(np.asarray(space.high, np.float32), shape).ravel().tolist()))
        else:
            raise ValueError(f"env {env_id!r} has a {type(space).__name__} action space; "
                             "purejaxppo supports Discrete and Box")
        self.observation_shape = tuple(self.env.observation_space(self.params).shape)
        self.observation_size = int(np.prod(self.observation_shape))

    @staticmethod
    def _flat(obs: jax.Array) -> jax.Array:
        return jnp.ravel(obs).astype(jnp.float32)  # image observations become vectors for the MLP

    def reset(self, key: jax.Array):
        obs, state = self.env.reset(key, self.params)
        return self._flat(obs), state

    def step(self, key: jax.Array, state: Any, action: jax.Array):
        if not self.action_spec.discrete:
            action = jnp.reshape(action, self.env.action_space(self.params).shape)
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, self.params)
        info = {**info, "final_observation": self._flat(info["final_observation"])}
        return (self._flat(obs), state, jnp.asarray(reward, jnp.float32), jnp.asarray(terminated, bool),
                jnp.asarray(truncated, bool), info)


@struct.dataclass
class EpisodeStatsState:
    env_state: Any
    episode_return: jax.Array
    episode_length: jax.Array


class EpisodeStatistics:
    """Adds the return and length of each episode as it ends.

    `info["episode_return"]` and `info["episode_length"]` are valid where `info["episode_done"]`; elsewhere 0.
    """

    def __init__(self, env: GymnaxEnv):
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


def make_base_env(env_id: str, **env_kwargs: Any):
    """The env `env_id` names, without episode statistics: a `brax_envs.BraxEnv` for a "brax:<name>" id, else a
    `GymnaxEnv`. `env_kwargs` go to its constructor."""
    if env_id.startswith(BRAX_PREFIX):
        return _brax_envs(env_id).BraxEnv(env_id, **env_kwargs)
    return GymnaxEnv(env_id, **env_kwargs)


def make_env(env_id: str, **env_kwargs: Any) -> EpisodeStatistics:
    """The env PPO trains on: `env_id` from gymnax or Brax, flat float32 observations, episode statistics."""
    return EpisodeStatistics(make_base_env(env_id, **env_kwargs))
