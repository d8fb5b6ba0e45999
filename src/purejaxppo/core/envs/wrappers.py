"""Wrappers, each with one concern, that compose on top of an env as Brax's do. A suite's env (`suites`) is

    EpisodeStatistics(AutoReset or BatchedReset(TimeLimit(Encoded(adapter))))

`Encoded` (an adapter in the protocol's encoding) and `TimeLimit` step one env without resetting it, returning a
`Stepped`; the reset wrappers make that the `Env` protocol's auto-resetting step (`base`); `EpisodeStatistics`
adds episode returns and lengths to any `Env`, a gymnax env (which auto-resets itself) included. Attributes a
wrapper does not set are read from the env it wraps, down to the adapter.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from purejaxppo.core.envs.base import ActionSpec, multi_discrete
from purejaxppo.core.envs.observations import observation_codec


class Stepped(NamedTuple):
    """One step of one env, before any reset."""

    obs: Any  # the suite's observation (a pytree), or from `Encoded` on, the flat float32 one
    state: Any
    reward: jax.Array
    terminated: jax.Array  # bool []: the episode ended, and its value is 0 from here
    truncated: jax.Array  # bool []: the episode was cut by a time limit


class Wrapper:
    """An env wrapping `env`: what it does not set itself, it reads from `env`."""

    def __init__(self, env: Any):
        self.env = env

    def __getattr__(self, name: str):
        if name == "env":  # not yet set (a copy under construction): no recursion
            raise AttributeError(name)
        return getattr(self.env, name)

    @property
    def unwrapped(self) -> Any:
        """The innermost env: the suite's adapter, or the env that was given."""
        return getattr(self.env, "unwrapped", self.env)


@struct.dataclass
class TimeLimitParams:
    max_steps_in_episode: int  # the time limit: the suite's own, or one added for a suite without


@struct.dataclass
class TimeLimitState:
    inner: Any  # the wrapped env's state
    steps: jax.Array  # steps taken in the current episode, int32 []


class TimeLimit(Wrapper):
    """Truncates an episode at `max_steps` steps: `truncated`, not `terminated`, so that its value target
    bootstraps from V(final observation). A termination on the same step wins: the episode did end."""

    def __init__(self, env: Any, max_steps: int, state_type: type = TimeLimitState):
        """`state_type`: built as `(inner, steps)` and read as `.inner`, `.steps`; another than `TimeLimitState`
        only to keep the field names that an adapter's older checkpoints hold."""
        super().__init__(env)
        self.params = TimeLimitParams(int(max_steps))
        self.state_type = state_type

    def reset(self, key: jax.Array) -> tuple[Any, TimeLimitState]:
        obs, state = self.env.reset(key)
        return obs, self.state_type(state, jnp.int32(0))

    def step(self, key: jax.Array, state: TimeLimitState, action: jax.Array) -> Stepped:
        out = self.env.step(key, state.inner, action)
        steps = state.steps + 1
        truncated = (out.truncated | (steps >= self.params.max_steps_in_episode)) & ~out.terminated
        return Stepped(out.obs, self.state_type(out.state, steps), out.reward, out.terminated, truncated)


def _protocol_step(out: Stepped, obs: jax.Array, state: Any) -> tuple:
    """The `Env` protocol's step values: `obs` and `state` start the next episode where `out` ended one, and
    `info["final_observation"]` keeps the ended episode's last observation for the bootstrap."""
    return obs, state, out.reward, out.terminated, out.truncated, {"final_observation": out.obs}


class AutoReset(Wrapper):
    """Each env resets itself when its episode ends, with its own step's key: the `Env` protocol's step."""

    def _keys(self, key: jax.Array) -> jax.Array:
        """The step's and the reset's key, `[2]`. An env whose step draws nothing random (Brax's physics) gives its
        step's whole key to the reset."""
        return jax.random.split(key) if getattr(self.env, "step_uses_key", True) else jnp.stack([key, key])

    def step(self, key: jax.Array, state: Any, action: jax.Array):
        """One env's step: `step_batch` on a batch of one."""
        out = self.step_batch(key[None], jax.tree.map(lambda x: x[None], state), action[None])
        return jax.tree.map(lambda x: x[0], out)

    def step_batch(self, keys: jax.Array, state: Any, action: jax.Array):
        """The protocol's step over a batch `[N]` of keys, states and actions; every value `[N, ...]`."""
        keys = jax.vmap(self._keys)(keys)
        out = jax.vmap(self.env.step)(keys[:, 0], state, action)
        fresh = lambda: jax.vmap(self.env.reset)(keys[:, 1])
        obs, state = reset_where_done(out.terminated | out.truncated, fresh, (out.obs, out.state))
        return _protocol_step(out, obs, state)


class BatchedReset(AutoReset):
    """An `AutoReset` whose batch of envs generates `resets_per_step(N)` fresh episodes per step, which the envs
    whose episode ended take in turn: the i-th env to end takes fresh episode i (modulo their number). With one
    per env (`share` 1), every ended env starts a fresh episode of its own. A suite whose reset costs far more than
    a step shares fewer (Craftax's optimistic resets: a sixteenth of the batch); envs ending at the same step may
    then share one start. One env's `step` is `AutoReset`'s: a batch of one."""

    def __init__(self, env: Any, share: int = 1):
        super().__init__(env)
        self.share = share

    def resets_per_step(self, num_envs: int) -> int:
        return max(1, num_envs // self.share)

    def step_batch(self, keys: jax.Array, state: Any, action: jax.Array):
        """The protocol's step over a batch `[N]` of keys, states and actions; every value `[N, ...]`."""
        n = keys.shape[0]
        split = jax.vmap(jax.random.split)(keys)
        out = jax.vmap(self.env.step)(split[:, 0], state, action)
        done = out.terminated | out.truncated
        slot = (jnp.cumsum(done) - 1) % self.resets_per_step(n)  # the i-th env to end takes fresh episode i

        def fresh():
            starts = jax.vmap(self.env.reset)(split[:self.resets_per_step(n), 1])
            return jax.tree.map(lambda x: x[slot], starts)

        obs, state = reset_where_done(done, fresh, (out.obs, out.state))
        return _protocol_step(out, obs, state)


def reset_where_done(done: jax.Array, fresh: Callable[[], Any], stepped: Any) -> Any:
    """`fresh()` where `done` `[N]`, else `stepped` (pytrees of `[N, ...]` leaves of the same structure).

    `fresh()`, the batch's resets, is computed only at steps where some episode ended: most steps end none, and a
    reset costs as much as a step or more (a sampled start, a generated map). The branch is one for the whole
    batch; under a vmap over runs it becomes a select and both sides are computed, as an unbranched step would.
    """
    n = done.shape[0]
    starts = jax.lax.cond(done.any(), fresh, lambda: stepped)
    keep = lambda f, s: jnp.where(done.reshape((n,) + (1,) * (s.ndim - 1)), f, s)
    return jax.tree.map(keep, starts, stepped)


def batch_step(env: Any):
    """`env`'s step over a batch `[N]` of keys, states and actions: its own `step_batch` where it has one (a
    suite that shares work across the batch), else its `step` vmapped."""
    return getattr(env, "step_batch", None) or jax.vmap(env.step)


@struct.dataclass
class EpisodeStatsState:
    env_state: Any
    episode_return: jax.Array
    episode_length: jax.Array


class EpisodeStatistics(Wrapper):
    """Adds the return and length of each episode as it ends.

    `info["episode_return"]` and `info["episode_length"]` are valid where `info["episode_done"]`; elsewhere 0.
    """

    def reset(self, key: jax.Array):
        obs, env_state = self.env.reset(key)
        return obs, EpisodeStatsState(env_state, jnp.float32(0.0), jnp.int32(0))

    def step(self, key: jax.Array, state: EpisodeStatsState, action: jax.Array):
        return self._track(state, self.env.step(key, state.env_state, action))

    def step_batch(self, keys: jax.Array, state: EpisodeStatsState, action: jax.Array):
        """`step` over a batch `[N]` (`batch_step` of the wrapped env)."""
        return self._track(state, batch_step(self.env)(keys, state.env_state, action))

    def _track(self, state: EpisodeStatsState, out: tuple):
        obs, env_state, reward, terminated, truncated, info = out
        done = terminated | truncated
        ep_return = state.episode_return + reward
        ep_length = state.episode_length + 1
        info = {**info, "episode_done": done,
                "episode_return": jnp.where(done, ep_return, 0.0),
                "episode_length": jnp.where(done, ep_length, 0)}
        state = EpisodeStatsState(env_state, jnp.where(done, 0.0, ep_return), jnp.where(done, 0, ep_length))
        return obs, state, reward, terminated, truncated, info


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
