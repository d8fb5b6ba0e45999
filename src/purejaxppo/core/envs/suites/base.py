"""What every suite shares: the adapter a suite is written as, `Encoded` (its env in the `Env` protocol's
encoding), and `suite_env`, the one stack of wrappers (`wrappers`) that Brax and every suite step through.

An adapter says only how to reset and step one raw env, and what its spaces are:

    env_id: str
    time_limit: int | None         the suite's own episode limit; None: DEFAULT_TIME_LIMIT is added
    action_space: (kind, values)   ("discrete", n), ("multi", nvec per factor) or ("box", (low, high))
    reset(key) -> (obs, state)     obs: an array or any pytree of arrays
    step(key, state, action) -> Stepped, the suite's own ends, without resetting
    step_uses_key = False          (optional) the step draws nothing random: the reset gets the step's whole key

Suites say differently which ends are terminations and which time limits: xminigrid and jumanji by discount 0
(terminal) or 1 (truncated), navix by a step type per kind, Craftax by a step counter, Brax not at all (one
`done`). The adapter reads its suite's way. Resetting in the wrappers rather than in the suite's own auto-reset
keeps `info["final_observation"]`, which a truncated episode's value target bootstraps from.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from purejaxppo.core.envs.base import ActionSpec, multi_discrete
from purejaxppo.core.envs.naming import check_kwarg_types, unknown_parameter
from purejaxppo.core.envs.observations import observation_codec
from purejaxppo.core.envs.wrappers import AutoReset, BatchedReset, Stepped, TimeLimit, TimeLimitState, Wrapper

DEFAULT_TIME_LIMIT = 10_000
"""Steps after which an episode of an env without a time limit of its own is truncated (and bootstrapped)."""


def suite_env(adapter: Any, share: int | None) -> Wrapper:
    """The `Env` `adapter` is stepped through: `Encoded`, its `TimeLimit`, and a reset: with `share` None each
    env resets itself (`AutoReset`), else the batch generates one fresh episode per `share` envs (`BatchedReset`)."""
    env = TimeLimit(Encoded(adapter), adapter.time_limit or DEFAULT_TIME_LIMIT,
                    getattr(adapter, "time_limit_state", TimeLimitState))
    return AutoReset(env) if share is None else BatchedReset(env, share)


def suite_action_spec(env_id: str, kind: str, values: Any, mask_shape: tuple[int, ...] | None
                      ) -> tuple[ActionSpec, Callable[[jax.Array], jax.Array]]:
    """(the policy's spec, policy action -> suite action) for an action space `(kind, values)` (see the module
    docstring), with the suite's action mask of `mask_shape`.

    A MultiDiscrete space is factorized categoricals. Where its mask is over combinations (`mask_shape ==
    nvec`, e.g. jumanji's Minesweeper cells), the combinations are instead one categorical, so that the mask
    stays exact: the policy's index is unraveled into the suite's action.
    """
    if kind == "box":
        low, high = (tuple(float(x) for x in np.ravel(bound)) for bound in values)
        return ActionSpec(discrete=False, shape=(len(low),), low=low, high=high), lambda a: a
    if kind == "discrete":
        n = int(values)
        if mask_shape not in (None, (n,)):
            raise ValueError(f"env {env_id!r}: its action mask {list(mask_shape)} does not match its {n} actions")
        return ActionSpec(discrete=True, num_actions=n, mask_size=n if mask_shape else 0), lambda a: a
    nvec = tuple(int(n) for n in np.asarray(values).ravel())
    if mask_shape == nvec and len(nvec) > 1:
        total = int(np.prod(nvec))
        spec = ActionSpec(discrete=True, num_actions=total, mask_size=total)
        return spec, lambda a: jnp.stack(jnp.unravel_index(a, nvec)).astype(jnp.int32)
    if mask_shape not in (None, (len(nvec), max(nvec))):
        raise ValueError(f"env {env_id!r}: its action mask {list(mask_shape)} fits neither the combinations "
                         f"{list(nvec)} nor one row per factor")
    mask_size = len(nvec) * max(nvec) if mask_shape else 0
    return multi_discrete(nvec, mask_size), lambda a: a.astype(jnp.int32)


class Encoded(Wrapper):
    """An adapter's env in the protocol's encoding: observations flat float32 (`observations`), the policy's
    actions as the suite's, rewards float32, ends bool, and typed PRNG keys in the state as their raw data. Steps
    without resetting (a `Stepped`)."""

    def __init__(self, adapter: Any):
        super().__init__(adapter)
        obs, state = jax.eval_shape(adapter.reset, jax.random.key(0))
        # Typed PRNG keys in a suite's state (navix's, xminigrid's, jumanji's) are carried as their raw uint32
        # data: checkpoints, sweeps' stacked states and numpy zeros take no key dtype.
        # They derive from the keys purejaxppo hands in, so they are of JAX's default implementation.
        self._is_key = [jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) for x in jax.tree.leaves(state)]
        self.codec = observation_codec(obs)
        self.observation_size = self.codec.size
        self.observation_shape = self.codec.shape
        self.image_shape = self.codec.image_shape
        self.action_spec, self._to_suite = suite_action_spec(adapter.env_id, *adapter.action_space,
                                                             self.codec.mask_shape)

    def _carry(self, state: Any) -> Any:
        leaves, tree = jax.tree.flatten(state)
        return jax.tree.unflatten(tree, [jax.random.key_data(x) if is_key else x
                                         for x, is_key in zip(leaves, self._is_key)])

    def _uncarry(self, state: Any) -> Any:
        leaves, tree = jax.tree.flatten(state)
        return jax.tree.unflatten(tree, [jax.random.wrap_key_data(x) if is_key else x
                                         for x, is_key in zip(leaves, self._is_key)])

    def reset(self, key: jax.Array) -> tuple[jax.Array, Any]:
        obs, state = self.env.reset(key)
        return self.codec.encode(obs), self._carry(state)

    def step(self, key: jax.Array, state: Any, action: jax.Array) -> Stepped:
        out = self.env.step(key, self._uncarry(state), self._to_suite(action))
        return Stepped(self.codec.encode(out.obs), self._carry(out.state), jnp.asarray(out.reward, jnp.float32),
                       jnp.asarray(out.terminated, bool), jnp.asarray(out.truncated, bool))


def set_fields(env_id: str, params: Any, kwargs: dict[str, Any], also: tuple[str, ...] = ()) -> Any:
    """`params` (a dataclass) with `kwargs` set; ValueError listing the valid names (and `also`) for another."""
    fields = [f.name for f in dataclasses.fields(params)]
    for name in kwargs:
        if name not in fields:
            raise unknown_parameter(env_id, name, [*fields, *also])
    check_kwarg_types(env_id, kwargs, {name: getattr(params, name) for name in kwargs})
    return params.replace(**kwargs) if kwargs else params
