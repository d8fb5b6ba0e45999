"""jumanji ids, "jumanji:Snake-v1" (the jumanji extra): InstaDeep's puzzles, routing and packing problems.

Most jumanji envs end an episode at their `time_limit` as a termination (discount 0), as if the state after it had
no value; only a few (level-based foraging) call it a truncation. So this adapter takes the time limit over: the
env is built with a limit it never reaches, its discount-0 ends are terminations, and the `TimeLimit` wrapper
truncates the episode at the env's own `time_limit` (`--env-kwargs max_steps_in_episode=N` or `time_limit=N` sets
it; envs without one get `DEFAULT_TIME_LIMIT`), where the value target bootstraps.
Observations are pytrees (a grid, a step count, `action_mask`): the mask is honoured, the rest flattened with the
largest grid first, for `--torso cnn`. MultiDiscrete actions are factorized categoricals (or one categorical over
the combinations, where the mask is over combinations).
"""

from __future__ import annotations

from typing import Any

import jax
import jumanji
from jumanji import specs
from jumanji.types import StepType

from purejaxppo.core.envs.naming import check_constructor_kwargs, check_kwarg_types, create, keyword_names
from purejaxppo.core.envs.wrappers import Stepped

NEVER = 2**30  # the time limit the env itself is given: the adapter's own ends the episode first


def names() -> list[str]:
    return sorted(jumanji.registered_environments())


class JumanjiEnv:
    def __init__(self, env_id: str, **kwargs: Any):
        self.env_id = env_id
        name = env_id.partition(":")[2]
        limit = kwargs.pop("time_limit", None)  # max_steps_in_episode arrives renamed (its row)
        check_kwarg_types(env_id, {"time_limit": limit} if limit is not None else {}, {"time_limit": 1})
        made = jumanji.make(name)
        own = getattr(made, "time_limit", None)
        if "time_limit" in (keyword_names(type(made).__init__) or set()):
            kwargs["time_limit"] = NEVER
        check_constructor_kwargs(env_id, type(made).__init__, kwargs, also=("max_steps_in_episode",))
        self.raw = create(env_id, jumanji.make, name, **kwargs) if kwargs else made
        limit = limit if limit is not None else own
        self.time_limit = None if limit is None else int(limit)
        space = self.raw.action_spec
        if isinstance(space, specs.MultiDiscreteArray):
            self.action_space = ("multi", space.num_values)
        elif isinstance(space, specs.DiscreteArray):
            self.action_space = ("discrete", space.num_values)
        else:
            raise ValueError(f"env {env_id!r} has a {type(space).__name__} action space; purejaxppo supports "
                             "jumanji's DiscreteArray and MultiDiscreteArray")

    def reset(self, key: jax.Array):
        state, timestep = self.raw.reset(key)
        return timestep.observation, state

    def step(self, key: jax.Array, state: Any, action: jax.Array) -> Stepped:
        state, timestep = self.raw.step(state, action)
        last = timestep.step_type == StepType.LAST
        return Stepped(timestep.observation, state, timestep.reward, last & (timestep.discount == 0),
                       last & (timestep.discount > 0))
