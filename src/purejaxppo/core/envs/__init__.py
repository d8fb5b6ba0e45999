"""Environments behind one `Env` protocol (`base`): gymnax ids ("CartPole-v1", which auto-reset themselves), the
suites' ids ("<suite>:<name>", a row of `core.env_ids.SUITES` each, an optional extra: `suites`, every one an
adapter in the same stack of `wrappers`), "package.module:factory" ids naming a function that returns an env,
names given to env objects with `register_env`, and env objects themselves (`custom`). `make_env` turns an id, or
an object, into the env PPO trains on; `run_env` does so once for a run, which then passes it down. Errors naming
an env or its parameters are worded in `naming`."""

from __future__ import annotations

from typing import Any

from purejaxppo.core.envs.base import ActionSpec, Env, image_shape_of
from purejaxppo.core.envs.custom import (
    adapt_env,
    is_factory_id,
    is_registered,
    is_user_env,
    make_factory_env,
    make_registered_env,
    register_env,
)
from purejaxppo.core.envs.gymnax_env import GymnaxEnv, check_gymnax_env_id
from purejaxppo.core.envs.suites import BRAX_PREFIX, check_suite_env_id, make_suite_env, suite_of
from purejaxppo.core.envs.wrappers import EpisodeStatistics

__all__ = ["ActionSpec", "BRAX_PREFIX", "Env", "EpisodeStatistics", "GymnaxEnv", "check_env_id", "image_shape_of",
           "is_user_env", "make_base_env", "make_env", "register_env", "run_env"]


def check_env_id(env_id: str) -> None:
    """Raises ValueError for an id no suite registers, naming the closest ones, without making its env. A
    "module:factory" id is checked where it is made (it must be imported)."""
    _check_id_form(env_id)
    if suite_of(env_id):
        check_suite_env_id(env_id)
    elif not (is_factory_id(env_id) or is_registered(env_id)):
        check_gymnax_env_id(env_id)


def make_base_env(env: str | Any, **env_kwargs: Any) -> Env:
    """The env `env` names, without episode statistics: a suite's for a "<suite>:<name>" id, the factory's env
    for a "module:factory" id, a `GymnaxEnv` for any other id; or `env` itself, adapted, if it is an env object.
    `env_kwargs` set the env's params fields or go to its constructor or factory. Raises ValueError (one line)
    for an unknown id or name, or an env that does not follow the protocol."""
    if not isinstance(env, str):
        if env_kwargs:
            raise ValueError("env_kwargs apply to an env made from an id; an env object comes as it was built")
        return adapt_env(env, getattr(env, "env_id", None) or type(env[0] if isinstance(env, tuple) else env).__name__)
    _check_id_form(env)  # the rest of the id is checked once, by what makes its env
    if is_registered(env):
        return make_registered_env(env, env_kwargs)
    if suite_of(env):
        return make_suite_env(env, **env_kwargs)
    if is_factory_id(env):
        return make_factory_env(env, env_kwargs)
    return GymnaxEnv(env, **env_kwargs)


def _check_id_form(env_id: Any) -> None:
    if not isinstance(env_id, str) or not env_id.strip():
        raise ValueError(f"env id {env_id!r} is invalid: name an env, e.g. CartPole-v1")


def make_env(env: str | Any, **env_kwargs: Any) -> EpisodeStatistics:
    """The env PPO trains on: `make_base_env(env, **env_kwargs)` with episode statistics."""
    return EpisodeStatistics(make_base_env(env, **env_kwargs))


def run_env(env_id: str, env_kwargs: dict[str, Any], env: Any = None) -> EpisodeStatistics:
    """The env one run trains on, made and checked once, for the run to pass down: `env` itself where it is one
    (`make_env`'s, or a caller's that made it so); else the env `env_id` names with `env_kwargs`, after registering
    `env`, if given (a user's env object, or a function returning one), under `env_id`."""
    if isinstance(env, EpisodeStatistics):
        return env
    if env is not None:
        register_env(env_id, env)
    return make_env(env_id, **dict(env_kwargs))
