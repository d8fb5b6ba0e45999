"""The `Env` protocol every env implements and the `ActionSpec` it declares (the wrappers that build one from a
suite's adapter, and the episode statistics PPO trains through, are in `wrappers`).

An `Env` is ONE env with gymnax 1.x's functional signature, without env params (an adapter holds its own):

    reset(key) -> (obs, state)
    step(key, state, action) -> (obs, state, reward, terminated, truncated, info)

Observations are flat float32 `[observation_size]`, rewards float32 `[]`, terminated and truncated bool `[]`.
An env whose observation holds an image declares `image_shape` `(H, W, C)`: the flat observation's first H*W*C
entries are that image, which a CNN torso (`PPOConfig.torso`) reshapes and convolves. An env with an action mask
declares `action_spec.mask_size`: the flat observation's last entries are the mask (1.0 where an action is valid),
so that rollouts, checkpoints and loaded policies carry it as they carry the observation.
`step` auto-resets: after an episode ends, `obs` is the first observation of the next episode and
`info["final_observation"]` the last observation of the ended one, which a truncated episode's value target
bootstraps from. Rollouts `jax.vmap` an env over a batch, or call its `step_batch` where it has one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import jax
import numpy as np

NO_FINAL_OBSERVATION = ("step's info has no 'final_observation', the ended episode's last observation a truncated "
                        "episode's value target bootstraps from")


class ProtocolError(ValueError):
    """An env breaks the `Env` protocol (or the functional interface): one line naming what, which `check_env`
    passes on as it is rather than as a failure of the env's own code."""


@dataclass(frozen=True)
class ActionSpec:
    """What the policy must output: `num_actions` logits (discrete), one categorical per entry of `nvec`
    (MultiDiscrete, factorized: the action is int32 `[len(nvec)]`), or a `shape` vector within [low, high].

    `mask_size`: the observation's last `mask_size` entries are an action mask, `num_actions` of them (discrete) or
    `len(nvec) * num_actions` (one row per factor; `num_actions` is then `max(nvec)`).
    """

    discrete: bool
    num_actions: int = 0
    shape: tuple[int, ...] = ()
    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()
    nvec: tuple[int, ...] = ()
    mask_size: int = 0

    @property
    def size(self) -> int:
        """Policy-head width: logits for discrete actions (every factor's), means for continuous ones."""
        if self.nvec:
            return len(self.nvec) * self.num_actions
        return self.num_actions if self.discrete else int(np.prod(self.shape))


def multi_discrete(nvec: tuple[int, ...], mask_size: int = 0) -> ActionSpec:
    """The spec of factorized categoricals with `nvec[i]` choices for factor i."""
    nvec = tuple(int(n) for n in nvec)
    return ActionSpec(discrete=True, num_actions=max(nvec), shape=(len(nvec),), nvec=nvec, mask_size=mask_size)


@runtime_checkable
class Env(Protocol):
    """One environment as purejaxppo steps it (see the module docstring)."""

    env_id: str
    action_spec: ActionSpec
    observation_shape: tuple[int, ...]  # as the suite returns observations, before flattening
    observation_size: int  # the flat observation's length
    params: Any  # has `max_steps_in_episode`, the time limit that bounds every episode
    # Optional: image_shape, (H, W, C) of the image the observation starts with (None: no image); step_batch,
    # `step` over a batch of envs at once (`wrappers.batch_step`), for a suite that shares work across the batch.

    def reset(self, key: jax.Array) -> tuple[jax.Array, Any]: ...

    def step(self, key: jax.Array, state: Any, action: jax.Array
             ) -> tuple[jax.Array, Any, jax.Array, jax.Array, jax.Array, dict[str, Any]]: ...


def image_shape_of(env: Env) -> tuple[int, int, int] | None:
    """The `(H, W, C)` image `env`'s observations start with, or None."""
    shape = getattr(env, "image_shape", None)
    return None if shape is None else tuple(int(d) for d in shape)
