"""Environments behind one `Env` protocol (`base`), with an adapter per suite: gymnax ids ("CartPole-v1") and
"brax:<name>" ids (the optional brax extra). `make_env` turns an id into the env PPO trains on."""

from __future__ import annotations

from typing import Any

from purejaxppo.core.envs.base import BRAX_PREFIX, ActionSpec, Env, EpisodeStatistics
from purejaxppo.core.envs.gymnax_env import GymnaxEnv, check_gymnax_env_id

__all__ = ["ActionSpec", "BRAX_PREFIX", "Env", "EpisodeStatistics", "GymnaxEnv", "check_env_id", "make_base_env",
           "make_env"]


def _brax_suite(env_id: str):
    """`purejaxppo.core.envs.brax_env`, imported only for a brax id: brax is an optional extra, slow to import."""
    try:
        import brax  # noqa: F401
    except ModuleNotFoundError as e:
        raise ValueError(f"{env_id} needs the brax extra: pip install -e '.[brax]'") from e
    from purejaxppo.core.envs import brax_env

    return brax_env


def check_env_id(env_id: str) -> None:
    """Raises ValueError for an id no suite registers, naming the closest ones."""
    if not isinstance(env_id, str) or not env_id.strip():
        raise ValueError(f"env id {env_id!r} is invalid: name an env, e.g. CartPole-v1")
    if env_id.startswith(BRAX_PREFIX):
        _brax_suite(env_id).check_brax_env_id(env_id)
    else:
        check_gymnax_env_id(env_id)


def make_base_env(env_id: str, **env_kwargs: Any) -> Env:
    """The env `env_id` names, without episode statistics: a `BraxEnv` for a "brax:<name>" id, else a
    `GymnaxEnv`. `env_kwargs` go to its constructor. Raises ValueError for an unknown id."""
    check_env_id(env_id)
    if env_id.startswith(BRAX_PREFIX):
        return _brax_suite(env_id).BraxEnv(env_id, **env_kwargs)
    return GymnaxEnv(env_id, **env_kwargs)


def make_env(env_id: str, **env_kwargs: Any) -> EpisodeStatistics:
    """The env PPO trains on: `env_id` from gymnax or Brax, flat float32 observations, episode statistics."""
    return EpisodeStatistics(make_base_env(env_id, **env_kwargs))
