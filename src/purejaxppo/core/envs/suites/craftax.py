"""craftax ids, "craftax:Craftax-Classic-Symbolic-v1" (the craftax extra): Crafter's open world in JAX, Classic or
full, as a symbolic vector or pixels.

Craftax reports one `done` for death and for its step limit (`max_timesteps`); this adapter tells them apart by
the step counter: a done at the limit is a truncation, any other a termination. Pixel observations are
`[H, W, 3]` images for `--torso cnn`. A world costs about a dozen steps to generate, so a batch of envs
generates a sixteenth of its size each step (`SuiteEnv.step_batch`).
"""

from __future__ import annotations

from typing import Any

import jax
from craftax.craftax_env import make_craftax_env_from_name

from purejaxppo.core.envs.suites.base import Stepped, SuiteEnv, set_fields

PREFIX = "craftax:"
NAMES = ("Craftax-Classic-Symbolic-v1", "Craftax-Classic-Pixels-v1", "Craftax-Symbolic-v1", "Craftax-Pixels-v1")


def names() -> list[str]:
    return list(NAMES)


class CraftaxEnv(SuiteEnv):
    def __init__(self, env_id: str, **kwargs: Any):
        self.env_id = env_id
        self.env = make_craftax_env_from_name(env_id.removeprefix(PREFIX), auto_reset=False)
        if "max_steps_in_episode" in kwargs:
            kwargs["max_timesteps"] = kwargs.pop("max_steps_in_episode")
        self.suite_params = set_fields(env_id, self.env.default_params, kwargs, also=("max_steps_in_episode",))
        self.time_limit = int(self.suite_params.max_timesteps)
        self._finish_init("discrete", self.env.num_actions)

    def resets_per_step(self, num_envs: int) -> int:
        # A world costs about a dozen steps (benchmarks/README.md, "Craftax resets"): a sixteenth of the batch
        # gets a fresh one each step, enough while episodes last 16 steps or more.
        return max(1, num_envs // 16)

    def _reset(self, key: jax.Array):
        return self.env.reset(key, self.suite_params)

    def _step(self, key: jax.Array, state: Any, action: jax.Array) -> Stepped:
        obs, state, reward, done, _ = self.env.step(key, state, action, self.suite_params)
        at_limit = state.timestep >= self.suite_params.max_timesteps
        return Stepped(obs, state, reward, done & ~at_limit, done & at_limit)
