"""`SuiteEnv`: what every suite adapter shares: the time limit, the auto-reset that keeps the ended episode's last
observation, the flat observation (`observations`), and the action spec from the suite's own space.

A suite adapter says only how to reset, how to step once without resetting, and which ends are terminations and
which time limits. Suites differ in both: xminigrid and jumanji end with discount 0 (terminal) or 1 (truncated),
navix with a step type per kind, Craftax with a step counter. Resetting here rather than in the suite's own
auto-reset keeps `info["final_observation"]`, which a truncated episode's value target bootstraps from.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from purejaxppo.core.envs.base import ActionSpec, multi_discrete
from purejaxppo.core.envs.functional import check_kwarg_types
from purejaxppo.core.envs.naming import unknown_parameter
from purejaxppo.core.envs.observations import observation_codec

DEFAULT_TIME_LIMIT = 10_000
"""Steps after which an episode of an env without a time limit of its own is truncated (and bootstrapped)."""


@struct.dataclass
class SuiteParams:
    max_steps_in_episode: int  # the time limit: the suite's own, or one added here


@struct.dataclass
class SuiteState:
    inner: Any  # the suite's state
    steps: jax.Array  # steps taken in the current episode, int32 []


class Stepped(NamedTuple):
    """One step of a suite, before any reset."""

    obs: Any  # the suite's observation (a pytree)
    state: Any
    reward: jax.Array
    terminated: jax.Array  # bool []: the episode ended, and its value is 0 from here
    truncated: jax.Array  # bool []: the episode was cut by a time limit


def suite_action_spec(env_id: str, kind: str, num_values: Any, mask_shape: tuple[int, ...] | None
                      ) -> tuple[ActionSpec, Callable[[jax.Array], jax.Array]]:
    """(the policy's spec, policy action -> suite action) for a discrete (`num_values` an int) or MultiDiscrete
    (`num_values` per factor) action space, with the suite's action mask of `mask_shape`.

    A MultiDiscrete space is factorized categoricals. Where its mask is over combinations (`mask_shape ==
    num_values`, e.g. jumanji's Minesweeper cells), the combinations are instead one categorical, so that the mask
    stays exact: the policy's index is unraveled into the suite's action.
    """
    if kind == "discrete":
        n = int(num_values)
        if mask_shape not in (None, (n,)):
            raise ValueError(f"env {env_id!r}: its action mask {list(mask_shape)} does not match its {n} actions")
        return ActionSpec(discrete=True, num_actions=n, mask_size=n if mask_shape else 0), lambda a: a
    nvec = tuple(int(n) for n in np.asarray(num_values).ravel())
    if mask_shape == nvec and len(nvec) > 1:
        total = int(np.prod(nvec))
        spec = ActionSpec(discrete=True, num_actions=total, mask_size=total)
        return spec, lambda a: jnp.stack(jnp.unravel_index(a, nvec)).astype(jnp.int32)
    if mask_shape not in (None, (len(nvec), max(nvec))):
        raise ValueError(f"env {env_id!r}: its action mask {list(mask_shape)} fits neither the combinations "
                         f"{list(nvec)} nor one row per factor")
    mask_size = len(nvec) * max(nvec) if mask_shape else 0
    return multi_discrete(nvec, mask_size), lambda a: a.astype(jnp.int32)


class SuiteEnv:
    """One env of a suite behind the `Env` protocol. Subclasses set `env_id`, `time_limit` (or None) and the
    action space, and implement `_reset(key) -> (obs, state)` and `_step(key, state, action) -> Stepped`."""

    env_id: str
    time_limit: int | None  # the suite's own; None: DEFAULT_TIME_LIMIT is added

    def _finish_init(self, action_kind: str, num_values: Any) -> None:
        """Reads the observation's layout from one traced reset; sets the protocol's attributes."""
        obs, state = jax.eval_shape(self._reset, jax.random.key(0))
        # Typed PRNG keys in a suite's state (navix's, xminigrid's, jumanji's) are carried as their raw uint32
        # data: checkpoints, sweeps' stacked states and numpy zeros take no key dtype.
        # They derive from the keys purejaxppo hands in, so they are of JAX's default implementation.
        self._is_key = [jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) for x in jax.tree.leaves(state)]
        self.codec = observation_codec(obs)
        self.observation_size = self.codec.size
        self.observation_shape = self.codec.shape
        self.image_shape = self.codec.image_shape
        self.action_spec, self._to_suite = suite_action_spec(self.env_id, action_kind, num_values,
                                                             self.codec.mask_shape)
        self.params = SuiteParams(int(self.time_limit or DEFAULT_TIME_LIMIT))

    def _carry(self, state: Any) -> Any:
        leaves, tree = jax.tree.flatten(state)
        return jax.tree.unflatten(tree, [jax.random.key_data(x) if is_key else x
                                         for x, is_key in zip(leaves, self._is_key)])

    def _uncarry(self, state: Any) -> Any:
        leaves, tree = jax.tree.flatten(state)
        return jax.tree.unflatten(tree, [jax.random.wrap_key_data(x) if is_key else x
                                         for x, is_key in zip(leaves, self._is_key)])

    def reset(self, key: jax.Array) -> tuple[jax.Array, SuiteState]:
        obs, state = self._reset(key)
        return self.codec.encode(obs), SuiteState(self._carry(state), jnp.int32(0))

    def resets_per_step(self, num_envs: int) -> int:
        """Fresh episodes generated per batched step: every env's (exact). A suite whose reset costs far more
        than a step overrides it (`CraftaxEnv`)."""
        return num_envs

    def step(self, key: jax.Array, state: SuiteState, action: jax.Array):
        """One env's step (`step_batch` on a batch of one)."""
        out = self.step_batch(key[None], jax.tree.map(lambda x: x[None], state), action[None])
        return jax.tree.map(lambda x: x[0], out)

    def step_batch(self, keys: jax.Array, state: SuiteState, action: jax.Array):
        """A batch of envs' steps, `[N]` keys, states and actions: `(obs, state, reward, terminated, truncated,
        info)`, each `[N, ...]`. Envs whose episode ended start the next from one of `resets_per_step(N)` fresh
        episodes (every env its own unless the suite generates fewer; then envs ending at the same step may share
        one start, as in Craftax's optimistic resets)."""
        n = keys.shape[0]
        split = jax.vmap(jax.random.split)(keys)
        out = jax.vmap(self._step)(split[:, 0], self._uncarry(state.inner), self._to_suite(action))
        steps = state.steps + 1
        terminated = jnp.asarray(out.terminated, bool)
        truncated = (jnp.asarray(out.truncated, bool) | (steps >= self.params.max_steps_in_episode)) & ~terminated
        done = terminated | truncated
        final = jax.vmap(self.codec.encode)(out.obs)
        # Computed at every step and kept where done: under vmap (of seeds, or of one step) a branch would compute
        # both sides anyway.
        reset_obs, reset_state = jax.vmap(self.reset)(split[:self.resets_per_step(n), 1])
        slot = (jnp.cumsum(done) - 1) % reset_obs.shape[0]  # the i-th env to end takes fresh episode i
        keep = lambda fresh, stepped: jnp.where(done.reshape((n,) + (1,) * (stepped.ndim - 1)), fresh[slot], stepped)
        next_state = jax.tree.map(keep, reset_state, SuiteState(self._carry(out.state), steps))
        return (keep(reset_obs, final), next_state, jnp.asarray(out.reward, jnp.float32), terminated, truncated,
                {"final_observation": final})


def set_fields(env_id: str, params: Any, kwargs: dict[str, Any], also: tuple[str, ...] = ()) -> Any:
    """`params` (a dataclass) with `kwargs` set; ValueError listing the valid names (and `also`) for another."""
    fields = [f.name for f in dataclasses.fields(params)]
    for name in kwargs:
        if name not in fields:
            raise unknown_parameter(env_id, name, [*fields, *also])
    check_kwarg_types(env_id, kwargs, {name: getattr(params, name) for name in kwargs})
    return params.replace(**kwargs) if kwargs else params
