"""The JAX env suites, each an optional extra, by id prefix: "craftax:", "jumanji:", "xminigrid:", "navix:".
A suite's module is imported only when one of its ids is made: the suites are slow to import, and absent unless
their extra is installed."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

import jax

from purejaxppo.core.envs.naming import unknown_env_id


@dataclass(frozen=True)
class Suite:
    prefix: str  # ids are this prefix and the suite's own name
    package: str  # what the extra installs
    extra: str  # pip install -e '.[extra]'
    module: str  # the adapter, under purejaxppo.core.envs.suites
    adapter: str  # its SuiteEnv class
    example: str


SUITES = (
    Suite("craftax:", "craftax", "craftax", "craftax", "CraftaxEnv", "craftax:Craftax-Classic-Symbolic-v1"),
    Suite("jumanji:", "jumanji", "jumanji", "jumanji", "JumanjiEnv", "jumanji:Snake-v1"),
    Suite("xminigrid:", "xminigrid", "xminigrid", "xminigrid", "XMiniGridEnv", "xminigrid:MiniGrid-Empty-8x8"),
    Suite("navix:", "navix", "navix", "navix", "NavixEnv", "navix:Navix-Empty-5x5-v0"),
)


def suite_of(env_id: str) -> Suite | None:
    """The suite whose prefix `env_id` starts with, or None."""
    return next((s for s in SUITES if isinstance(env_id, str) and env_id.startswith(s.prefix)), None)


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
    """The adapted env `env_id` names (its suite's `SuiteEnv`), with `env_kwargs` set on its params or
    constructor."""
    check_suite_env_id(env_id)
    suite = suite_of(env_id)
    # Envs are made inside traced functions too (a sweep's init); suites that build arrays when constructed
    # (navix's spaces) need them concrete.
    with jax.ensure_compile_time_eval():
        return getattr(_adapter_module(suite, env_id), suite.adapter)(env_id, **env_kwargs)
