"""xminigrid ids, "xminigrid:MiniGrid-Empty-8x8" (the xminigrid extra): XLand-MiniGrid's grid worlds.

An episode ends at the goal (discount 0: terminated) or at `max_steps` (discount 1: truncated). The observation is
the agent's view, `[view, view, 2]` uint8 (tile and colour ids), which `--torso cnn` convolves.
"""

from __future__ import annotations

from typing import Any

import jax
import xminigrid
from xminigrid.types import StepType

from purejaxppo.core.envs.suites.base import set_fields
from purejaxppo.core.envs.wrappers import Stepped


def names() -> list[str]:
    return list(xminigrid.registered_environments())


class XMiniGridEnv:
    def __init__(self, env_id: str, **kwargs: Any):
        self.env_id = env_id
        self.raw, params = xminigrid.make(env_id.partition(":")[2])
        self.suite_params = set_fields(env_id, params, kwargs, also=("max_steps_in_episode",))
        self.time_limit = int(self.suite_params.max_steps)
        self.action_space = ("discrete", self.raw.num_actions(self.suite_params))

    def reset(self, key: jax.Array):
        timestep = self.raw.reset(self.suite_params, key)
        return timestep.observation, timestep

    def step(self, key: jax.Array, timestep: Any, action: jax.Array) -> Stepped:
        timestep = self.raw.step(self.suite_params, timestep, action)
        last = timestep.step_type == StepType.LAST
        return Stepped(timestep.observation, timestep, timestep.reward, last & (timestep.discount == 0),
                       last & (timestep.discount > 0))
