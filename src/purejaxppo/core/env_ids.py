"""What an env id's form says, readable without importing any env suite (gymnax computes when imported, and the
commands read ids from files before JAX's backend may start)."""

from __future__ import annotations

import re

_FACTORY_ID = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def is_factory_id(env_id: str) -> bool:
    """Whether `env_id` reads "package.module:factory": making its env imports that module and calls that
    function (gymnax ids have no colon; "brax:" and the suites' ids are matched before this)."""
    return bool(_FACTORY_ID.match(env_id))
