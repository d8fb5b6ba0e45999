"""`FunctionalEnv`: any env with gymnax's functional interface behind the `Env` protocol (`base`).

The env object has `default_params`, `action_space(params)`, `observation_space(params)`, `reset(key, params)
-> (obs, state)` and `step(key, state, action, params)`, and auto-resets. Its `step` returns either

- gymnax 1.x's six values, `(obs, state, reward, terminated, truncated, info)`, with the ended episode's last
  observation in `info["final_observation"]`: a time limit is a truncation, and its value target bootstraps; or
- gymnax 0.x's five, `(obs, state, reward, done, info)`: every end is then taken as a termination (0.x does not
  say which ends were time limits, nor keep the last observation), which `make_env` warns about.

Observations become flat float32 vectors (a `Discrete` observation one-hot; a Dict or Tuple one flattened, its
`action_mask` entry honoured: `observations`), rewards float32, ends bool.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces
from gymnax.environments.environment import Environment

from purejaxppo.core.envs.base import NO_FINAL_OBSERVATION, ActionSpec, ProtocolError
from purejaxppo.core.envs.observations import ObservationCodec, observation_codec
from purejaxppo.core.envs.wrappers import reset_where_done

LEGACY_WARNING = ("{env_id}: step returns 5 values (gymnax 0.x): every episode end is taken as a termination, "
                  "so a time limit does not bootstrap its value target; return (obs, state, reward, terminated, "
                  "truncated, info) with info['final_observation'] (gymnax 1.x) to train on time limits correctly")


def action_spec_of(space: Any, env_id: str) -> ActionSpec:
    """The policy head a gymnax action space needs; ValueError for a space purejaxppo cannot act in."""
    if isinstance(space, spaces.Discrete):
        return ActionSpec(discrete=True, num_actions=int(space.n))
    if isinstance(space, spaces.Box):
        shape = tuple(space.shape) or (1,)
        return ActionSpec(
            discrete=False, shape=shape,
            low=tuple(np.broadcast_to(np.asarray(space.low, np.float32), shape).ravel().tolist()),
            high=tuple(np.broadcast_to(np.asarray(space.high, np.float32), shape).ravel().tolist()))
    raise ValueError(f"env {env_id!r} has a {type(space).__name__} action space; purejaxppo supports gymnax's "
                     "Discrete and Box")


def observation_encoder(space: Any, example: Callable[[], Any]) -> ObservationCodec:
    """The codec of a gymnax observation space; `example` traces one observation, for spaces of any other kind
    (Dict, Tuple: pytrees)."""
    if isinstance(space, spaces.Discrete):
        # An index (FrozenLake's cell) as one number would make neighbouring indices look alike to the MLP.
        n = int(space.n)
        return ObservationCodec(n, (n,), None, None, lambda obs: jax.nn.one_hot(obs, n, dtype=jnp.float32))
    if isinstance(space, spaces.Box):
        return observation_codec(jax.ShapeDtypeStruct(tuple(space.shape), jnp.float32))
    return observation_codec(example())


class FunctionalEnv:
    """One functional env and its params; float32 flat observations and float32 rewards. Whether its step returns
    gymnax 1.x's six values or 0.x's five is read from the step itself, when it is first traced (`legacy`: None
    until then); `custom.check_env` traces it before the env is used."""

    def __init__(self, env: Any, params: Any, env_id: str):
        for method in ("action_space", "observation_space", "reset", "step"):
            if not callable(getattr(env, method, None)):
                raise ValueError(f"env {env_id!r} ({type(env).__name__}) has no {method}(): give an env with "
                                 "gymnax's functional interface or one implementing purejaxppo's Env protocol")
        self.env, self.params, self.env_id = env, params, env_id
        codec = observation_encoder(
            env.observation_space(params), lambda: jax.eval_shape(env.reset, jax.random.key(0), params)[0])
        self.codec = codec
        self.observation_size, self.image_shape = codec.size, codec.image_shape
        # As the env returns observations (what a loaded policy accepts besides the flat vector); one-hot for an index.
        self.observation_shape = codec.shape
        self.action_spec = action_spec_of(env.action_space(params), env_id)
        if codec.mask_size:
            if not self.action_spec.discrete or codec.mask_shape != (self.action_spec.num_actions,):
                raise ValueError(f"env {env_id!r}: its observation's action_mask {list(codec.mask_shape)} does not "
                                 f"match its action space {self.action_spec}")
            self.action_spec = dataclasses.replace(self.action_spec, mask_size=codec.mask_size)
        self.legacy: bool | None = None

    def reset(self, key: jax.Array):
        obs, state = self.env.reset(key, self.params)
        return self.codec.encode(obs), state

    def step(self, key: jax.Array, state: Any, action: jax.Array):
        if not self.action_spec.discrete:
            action = jnp.reshape(action, self.env.action_space(self.params).shape)
        obs, state, reward, terminated, truncated, info = self._six(self.env.step(key, state, action, self.params))
        info = {**info, "final_observation": self.codec.encode(info["final_observation"])}
        return (self.codec.encode(obs), state, jnp.asarray(reward, jnp.float32), jnp.asarray(terminated, bool),
                jnp.asarray(truncated, bool), info)

    def step_batch(self, keys: jax.Array, state: Any, action: jax.Array):
        """`step` over a batch `[N]` of keys, states and actions; every value `[N, ...]`. An env that steps as
        gymnax 1.x's `Environment.step` does (not overriding it) gets the same values with its resets computed
        only at steps where an episode ended (`reset_where_done`); any other env's `step` is vmapped."""
        if not steps_as_gymnax(self.env):
            return jax.vmap(self.step)(keys, state, action)
        env, params = self.env, self.params
        if not self.action_spec.discrete:
            action = jnp.reshape(action, action.shape[:1] + env.action_space(params).shape)
        keys = jax.vmap(jax.random.split)(keys)  # each env's step and reset key, as gymnax splits them
        obs, stepped, reward, terminated, info = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))(
            keys[:, 0], state, action, params)
        truncated = jax.vmap(env.is_truncated, in_axes=(0, None))(stepped, params)
        fresh = lambda: jax.vmap(env.reset_env, in_axes=(0, None))(keys[:, 1], params)
        next_obs, next_state = reset_where_done(terminated | truncated, fresh, (obs, stepped))
        self.legacy = False
        encode = jax.vmap(self.codec.encode)
        info = {**info, "terminated": terminated, "truncated": truncated, "final_observation": encode(obs)}
        return (encode(next_obs), next_state, jnp.asarray(reward, jnp.float32), jnp.asarray(terminated, bool),
                jnp.asarray(truncated, bool), info)

    def _six(self, out: Any) -> tuple:
        """gymnax 1.x's six values of what the env's step returned; 0.x's five as if every end were a termination,
        its last observation the step's own."""
        if not isinstance(out, tuple) or len(out) not in (5, 6):
            raise ProtocolError(f"env {self.env_id!r}: step returns {type(out).__name__} of length "
                                f"{len(out) if isinstance(out, tuple) else '-'}; expected (obs, state, reward, "
                                "terminated, truncated, info) or gymnax 0.x's (obs, state, reward, done, info)")
        self.legacy = len(out) == 5  # the step's structure, the same however often it is traced
        if self.legacy:
            obs, state, reward, done, info = out
            return obs, state, reward, done, jnp.zeros((), bool), {**info, "final_observation": obs}
        if not isinstance(out[5], dict) or "final_observation" not in out[5]:
            raise ProtocolError(f"env {self.env_id!r}: {NO_FINAL_OBSERVATION}")
        return out


def steps_as_gymnax(env: Any) -> bool:
    """Whether `env` is a gymnax 1.x `Environment` with gymnax's own `step` and `reset`: its step is then
    `step_env`, `is_truncated`, and `reset_env` where the episode ended, with the key split in two."""
    return (isinstance(env, Environment) and hasattr(Environment, "is_truncated")
            and type(env).step is Environment.step and type(env).reset is Environment.reset)
