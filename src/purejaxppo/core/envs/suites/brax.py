"""brax ids, "brax:ant" (the brax extra): Brax's physics envs, "brax:<name>" for a name in Brax's registry
("brax:ant", "brax:halfcheetah", "brax:hopper", ...).

A Brax env signals one `done` and has no time limit; this adapter declares `episode_length` (Brax's default,
1000) its time limit, so that the `TimeLimit` wrapper truncates an episode that reaches it without terminating
(its value target bootstraps from V(final observation)), and each env resets itself (`AutoReset`) to a fresh
random initial state drawn with the step's key, the pre-reset observation kept in `info["final_observation"]`.
Brax's own wrappers (`brax.envs.training`) do neither: their auto-reset returns every episode of an env to that
env's first initial state and drops the pre-reset observation.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp
from brax import envs as brax_registry
from flax import struct

from purejaxppo.core.envs.naming import create
from purejaxppo.core.envs.wrappers import Stepped

DEFAULT_EPISODE_LENGTH = 1000


def names() -> list[str]:
    """The names Brax registers, sorted; "brax:" + a name is an env id."""
    # Brax keeps its registry in a module-level dict and offers no public way to list it.
    return sorted(brax_registry._envs)


@struct.dataclass
class BraxTimeLimitState:
    """The time limit's state (`TimeLimitState`) under the field names that Brax runs' checkpoints were written
    with, so that they keep loading."""

    brax_state: Any  # brax.envs.State: physics state, obs, reward, done, metrics
    steps: jax.Array  # steps taken in the current episode, int32 []

    @property
    def inner(self) -> Any:
        return self.brax_state


class BraxEnv:
    """One Brax env: observations `[observation_size]`, actions `[action_size]` in [-1, 1]."""

    step_uses_key = False  # physics draw nothing random: the reset after an episode takes the step's whole key
    time_limit_state = BraxTimeLimitState

    def __init__(self, env_id: str, episode_length: int = DEFAULT_EPISODE_LENGTH, **brax_kwargs: Any):
        """`brax_kwargs` go to the Brax env's constructor, e.g. `backend="spring"` (default: the env's own,
        "generalized" for every physics env)."""
        if isinstance(episode_length, bool) or not isinstance(episode_length, numbers.Integral) or episode_length < 1:
            raise ValueError(f"episode_length={episode_length!r} is invalid: must be a positive integer")
        self.env_id = env_id
        self.raw = create(env_id, brax_registry.get_environment, env_id.partition(":")[2], **brax_kwargs)
        self.time_limit = int(episode_length)
        size = self.raw.action_size
        self.action_space = ("box", ((-1.0,) * size, (1.0,) * size))

    def reset(self, key: jax.Array):
        state = self.raw.reset(key)
        return state.obs, state

    def step(self, key: jax.Array, state: Any, action: jax.Array) -> Stepped:
        state = self.raw.step(state, action)
        return Stepped(state.obs, state, state.reward, jnp.asarray(state.done) > 0, jnp.zeros((), bool))
