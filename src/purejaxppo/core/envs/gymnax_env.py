"""gymnax envs behind the `Env` protocol (`purejaxppo.core.envs.base`): flat float32 observations, float32
rewards, the time limit reported as a truncation with the pre-reset observation in `info["final_observation"]`
(gymnax 1.x's own signature)."""

from __future__ import annotations

import difflib
from typing import Any

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces

from purejaxppo.core.envs.base import ActionSpec


def check_gymnax_env_id(env_id: str) -> None:
    """Raises ValueError for an id gymnax does not register, naming the closest ones."""
    if env_id in gymnax.registered_envs:
        return
    close = difflib.get_close_matches(env_id, gymnax.registered_envs, n=3, cutoff=0.4)
    hint = f"did you mean {', '.join(close)}?" if close else f"known ids: {', '.join(gymnax.registered_envs)}"
    raise ValueError(f"unknown env id {env_id!r}: {hint}")


class GymnaxEnv:
    """One gymnax env with its default params; float32 flat observations and float32 rewards."""

    def __init__(self, env_id: str, **env_kwargs: Any):
        check_gymnax_env_id(env_id)
        # Envs are made inside the traced train function, and some (FourRooms, MetaMaze, Reacher, Swimmer,
        # PointRobot) build their maps and spaces with jnp and then read them in Python: evaluate that eagerly.
        with jax.ensure_compile_time_eval():
            self._describe(env_id, env_kwargs)

    def _describe(self, env_id: str, env_kwargs: dict[str, Any]) -> None:
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
