"""What an env id's form says, readable without importing any env suite (gymnax computes when imported, and the
commands read ids from files before JAX's backend may start)."""

from __future__ import annotations

import re

NAMED_PREFIXES = ("brax:", "craftax:", "jumanji:", "xminigrid:", "navix:")
"""The prefixes of the ids that name an env of a suite this package knows (`envs.base.BRAX_PREFIX`,
`envs.suites.SUITES`): such an id imports no code of the user's."""

_FACTORY_ID = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def is_factory_id(env_id: str) -> bool:
    """Whether `env_id` reads "package.module:factory": making its env imports that module and calls that
    function. gymnax ids have no colon, and the suites' ids (`NAMED_PREFIXES`) are not factory ids."""
    return bool(_FACTORY_ID.match(env_id)) and not env_id.startswith(NAMED_PREFIXES)
