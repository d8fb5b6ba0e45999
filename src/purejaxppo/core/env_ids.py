"""What an env id's form says, readable without importing any env suite (gymnax computes when imported, and the
commands read ids from files before JAX's backend may start): the suites purejaxppo knows, by prefix."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Suite:
    """A suite of envs, each an optional extra, whose ids are `prefix` and a name of the suite's own. Its adapter
    is `purejaxppo.core.envs.suites.<module>.<adapter>`, imported only when one of its ids is made."""

    prefix: str
    package: str  # what the extra installs
    extra: str  # pip install -e '.[extra]'
    module: str  # the adapter's module: `names()` and the adapter class
    adapter: str
    example: str
    share: int | None = 1  # one fresh episode per `share` envs each step (`BatchedReset`); None: `AutoReset`


SUITES = (
    # Brax's envs reset each on its own; the others as a batch, one fresh episode per env (as they always have).
    Suite("brax:", "brax", "brax", "brax", "BraxEnv", "brax:ant", share=None),
    # A Craftax world costs about a dozen steps (benchmarks/README.md, "Craftax resets"): a sixteenth of the
    # batch gets a fresh one each step, enough while episodes last 16 steps or more.
    Suite("craftax:", "craftax", "craftax", "craftax", "CraftaxEnv", "craftax:Craftax-Classic-Symbolic-v1", share=16),
    Suite("jumanji:", "jumanji", "jumanji", "jumanji", "JumanjiEnv", "jumanji:Snake-v1"),
    Suite("xminigrid:", "xminigrid", "xminigrid", "xminigrid", "XMiniGridEnv", "xminigrid:MiniGrid-Empty-8x8"),
    Suite("navix:", "navix", "navix", "navix", "NavixEnv", "navix:Navix-Empty-5x5-v0"),
)

NAMED_PREFIXES = tuple(suite.prefix for suite in SUITES)
"""The prefixes of the ids that name an env of a suite this package knows: such an id imports no code of the
user's."""

_FACTORY_ID = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def is_factory_id(env_id: str) -> bool:
    """Whether `env_id` reads "package.module:factory": making its env imports that module and calls that
    function. gymnax ids have no colon, and the suites' ids (`NAMED_PREFIXES`) are not factory ids."""
    return bool(_FACTORY_ID.match(env_id)) and not env_id.startswith(NAMED_PREFIXES)
