"""The JAX env suites, each an optional extra, by id prefix (the rows of `core.env_ids.SUITES`). A suite is an
adapter module (`base` says what it holds) and a row of `SUITES` (`core.env_ids`, which
the commands read before any suite is imported); every suite's env is the same stack of wrappers on its adapter
(`base.suite_env`). A suite's module is imported only when one of its ids is made: the suites are slow to import,
and absent unless their extra is installed."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import jax

from purejaxppo.core import env_ids
from purejaxppo.core.env_ids import Suite
from purejaxppo.core.envs.naming import unknown_env_id
from purejaxppo.core.envs.suites.base import suite_env

BRAX_PREFIX = next(suite.prefix for suite in env_ids.SUITES if suite.package == "brax")


def suite_of(env_id: str) -> Suite | None:
    """The suite whose prefix `env_id` starts with, or None."""
    return next((s for s in env_ids.SUITES if isinstance(env_id, str) and env_id.startswith(s.prefix)), None)


def _adapter_module(suite: Suite, env_id: str):
    if importlib.util.find_spec(suite.package) is None:
        raise ValueError(f"{env_id} needs the {suite.extra} extra: pip install -e '.[{suite.extra}]'")
    try:
        return importlib.import_module(f"purejaxppo.core.envs.suites.{suite.module}")
    except ImportError as e:  # installed, but one of its own dependencies is missing or broken
        raise ValueError(f"{env_id}: importing {suite.package} failed ({type(e).__name__}: {e}); reinstall the extra: "
                         f"pip install -e '.[{suite.extra}]'") from None


def check_suite_env_id(env_id: str) -> None:
    """ValueError (one line) if `env_id`'s suite is not installed or has no env of that name."""
    suite = suite_of(env_id)
    names = _adapter_module(suite, env_id).names()
    if env_id.removeprefix(suite.prefix) not in names:
        raise unknown_env_id(env_id, names, suite.package, suite.prefix)


def make_suite_env(env_id: str, **env_kwargs: Any):
    """The env `env_id` names: its suite's adapter, made with `env_kwargs`, in the suite's stack of wrappers."""
    check_suite_env_id(env_id)
    suite = suite_of(env_id)
    # Envs are made inside traced functions too (a sweep's init); suites that build arrays when constructed
    # (navix's spaces) need them concrete, and so does the trace of a reset that reads the observation's layout.
    with jax.ensure_compile_time_eval():
        adapter = getattr(_adapter_module(suite, env_id), suite.adapter)
        return suite_env(adapter(env_id, **_renamed(suite, env_id, env_kwargs)), suite.share)


def _renamed(suite: Suite, env_id: str, env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """`env_kwargs` with `max_steps_in_episode`, the name every env takes for its episode limit, given the
    suite's own name for it (`Suite.max_steps_field`)."""
    field = suite.max_steps_field
    if field is None or "max_steps_in_episode" not in env_kwargs:
        return env_kwargs
    if field in env_kwargs:
        raise ValueError(f"env {env_id!r}: max_steps_in_episode and {field} name one limit: give one of them")
    kwargs = dict(env_kwargs)
    kwargs[field] = kwargs.pop("max_steps_in_episode")
    return kwargs
