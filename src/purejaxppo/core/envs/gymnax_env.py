"""gymnax envs by id behind the `Env` protocol (`purejaxppo.core.envs.base`), through `FunctionalEnv`: gymnax
1.x reports a time limit as a truncation, with the pre-reset observation in `info["final_observation"]`. A gymnax
env auto-resets itself (its own step draws the reset's key), so it needs none of the `wrappers` but the episode
statistics."""

from __future__ import annotations

from typing import Any

import gymnax
import jax

from purejaxppo.core.envs.functional import FunctionalEnv
from purejaxppo.core.envs.naming import create, split_env_kwargs, unknown_env_id


def is_gymnax_env_id(env_id: str) -> bool:
    return env_id in gymnax.registered_envs


def check_gymnax_env_id(env_id: str) -> None:
    """Raises ValueError for an id gymnax does not register, naming the closest ones."""
    if env_id not in gymnax.registered_envs:
        raise unknown_env_id(env_id, gymnax.registered_envs, "gymnax")


class GymnaxEnv(FunctionalEnv):
    """One gymnax env by id; `env_kwargs` set its params' fields (`max_steps_in_episode`, ...) or go to its
    constructor."""

    def __init__(self, env_id: str, **env_kwargs: Any):
        check_gymnax_env_id(env_id)
        # Envs are made inside the traced train function, and some (FourRooms, MetaMaze, Reacher, Swimmer,
        # PointRobot) build their maps and spaces with jnp and then read them in Python: evaluate that eagerly.
        with jax.ensure_compile_time_eval():
            env, params = create(env_id, gymnax.make, env_id)  # e.g. MNISTBandit-bsuite downloads its data set
            built, set_params = split_env_kwargs(env_id, env_kwargs, params, type(env).__init__)
            if built:
                env, params = create(env_id, gymnax.make, env_id, **built)
            super().__init__(env, params.replace(**set_params) if set_params else params, env_id)
