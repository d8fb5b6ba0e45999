"""craftax ids, "craftax:Craftax-Classic-Symbolic-v1" (the craftax extra): Crafter's open world in JAX, Classic or
full, as a symbolic vector or pixels.

Craftax reports one `done` for death and for its step limit (`max_timesteps`); this adapter tells them apart by
the step counter: a done at the limit is a truncation, any other a termination. Pixel observations are
`[H, W, 3]` images for `--torso cnn`. A world costs about a dozen steps to generate, so a batch of envs
generates a sixteenth of its size each step (its row of `SUITES`, `wrappers.BatchedReset`).
"""

from __future__ import annotations

from typing import Any

import jax
from craftax.craftax_env import make_craftax_env_from_name

from purejaxppo.core.envs.suites.base import set_fields
from purejaxppo.core.envs.wrappers import Stepped

NAMES = ("Craftax-Classic-Symbolic-v1", "Craftax-Classic-Pixels-v1", "Craftax-Symbolic-v1", "Craftax-Pixels-v1")


def names() -> list[str]:
    return list(NAMES)


class CraftaxEnv:
    def __init__(self, env_id: str, **kwargs: Any):
        self.env_id = env_id
        self.raw = make_craftax_env_from_name(env_id.partition(":")[2], auto_reset=False)
        self.suite_params = set_fields(env_id, self.raw.default_params, kwargs, also=("max_steps_in_episode",))
        self.time_limit = int(self.suite_params.max_timesteps)
        self.action_space = ("discrete", self.raw.num_actions)

    def reset(self, key: jax.Array):
        return self.raw.reset(key, self.suite_params)

    def step(self, key: jax.Array, state: Any, action: jax.Array) -> Stepped:
        obs, state, reward, done, _ = self.raw.step(key, state, action, self.suite_params)
        at_limit = state.timestep >= self.suite_params.max_timesteps
        return Stepped(obs, state, reward, done & ~at_limit, done & at_limit)
