"""navix ids, "navix:Navix-Empty-5x5-v0" (the navix extra): MiniGrid's worlds in JAX.

navix marks each step a transition (0), a truncation at `max_steps` (1) or a termination (2). Its own `step`
resets only when handed a finished timestep; the wrappers reset first, so that never happens. Observations are
navix's default for the env (a symbolic `[H, W, 3]` grid for most), which `--torso cnn` convolves.
"""

from __future__ import annotations

from typing import Any

import jax
import navix

from purejaxppo.core.envs.naming import check_constructor_kwargs, check_kwarg_types, create
from purejaxppo.core.envs.wrappers import Stepped

DEFAULT_MAX_STEPS = 100  # navix.make's own default


def names() -> list[str]:
    return list(navix.registry())


class NavixEnv:
    def __init__(self, env_id: str, **kwargs: Any):
        self.env_id = env_id
        name = env_id.partition(":")[2]
        max_steps = kwargs.pop("max_steps", DEFAULT_MAX_STEPS)  # max_steps_in_episode arrives renamed (its row)
        check_kwarg_types(env_id, {"max_steps": max_steps}, {"max_steps": DEFAULT_MAX_STEPS})
        max_steps = int(max_steps)
        check_constructor_kwargs(env_id, type(navix.make(name, max_steps=max_steps)).__init__, kwargs,
                                 also=("max_steps", "max_steps_in_episode"))
        self.raw = create(env_id, navix.make, name, max_steps=max_steps, **kwargs)
        self.time_limit = max_steps
        self.action_space = ("discrete", int(self.raw.action_space.maximum) + 1)

    def reset(self, key: jax.Array):
        timestep = self.raw.reset(key)
        return timestep.observation, timestep

    def step(self, key: jax.Array, timestep: Any, action: jax.Array) -> Stepped:
        timestep = self.raw.step(timestep, action)
        return Stepped(timestep.observation, timestep, timestep.reward, timestep.step_type == 2,
                       timestep.step_type == 1)
