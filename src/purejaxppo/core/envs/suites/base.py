"""What every suite shares: the adapter a suite is written as, and `suite_env`, the one stack of wrappers
(`wrappers`, `Encoded` first: its env in the `Env` protocol's encoding) that Brax and every suite step through.

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
from typing import Any

from purejaxppo.core.envs.naming import check_kwarg_types, unknown_parameter
from purejaxppo.core.envs.wrappers import AutoReset, BatchedReset, Encoded, TimeLimit, TimeLimitState, Wrapper

DEFAULT_TIME_LIMIT = 10_000
"""Steps after which an episode of an env without a time limit of its own is truncated (and bootstrapped)."""


def suite_env(adapter: Any, share: int | None) -> Wrapper:
    """The `Env` `adapter` is stepped through: `Encoded`, its `TimeLimit`, and a reset: with `share` None each
    env resets itself (`AutoReset`), else the batch generates one fresh episode per `share` envs (`BatchedReset`)."""
    env = TimeLimit(Encoded(adapter), adapter.time_limit or DEFAULT_TIME_LIMIT,
                    getattr(adapter, "time_limit_state", TimeLimitState))
    return AutoReset(env) if share is None else BatchedReset(env, share)


def set_fields(env_id: str, params: Any, kwargs: dict[str, Any], also: tuple[str, ...] = ()) -> Any:
    """`params` (a dataclass) with `kwargs` set; ValueError listing the valid names (and `also`) for another."""
    fields = [f.name for f in dataclasses.fields(params)]
    for name in kwargs:
        if name not in fields:
            raise unknown_parameter(env_id, name, [*fields, *also])
    check_kwarg_types(env_id, kwargs, {name: getattr(params, name) for name in kwargs})
    return params.replace(**kwargs) if kwargs else params
