"""What an env id's form says, readable without importing any env suite (gymnax computes when imported, and the
commands read ids from files before JAX's backend may start): the suites purejaxppo knows, by prefix."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class Suite:
    """A suite of envs, each an optional extra, whose ids are `prefix` and a name of the suite's own. Its adapter
    is `purejaxppo.core.envs.suites.<module>.<adapter>`, imported only when one of its ids is made. Everything
    else the package knows of a suite is here: what reads a suite reads its row."""

    prefix: str
    package: str  # what the extra installs
    extra: str  # pip install -e '.[extra]'
    module: str  # the adapter's module: `names()` and the adapter class
    adapter: str
    example: str
    share: int | None = 1  # one fresh episode per `share` envs each step (`BatchedReset`); None: `AutoReset`
    defaults: Mapping[str, Any] = field(default_factory=dict)  # config fields every env of the suite trains with
    env_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # by env name, over `defaults`
    defaults_source: str = "docs/defaults.md#suites"  # where both come from (`core.defaults.SOURCES`)
    libraries: tuple[str, ...] = ()  # besides `package`, what decides the programs traced (the program cache)
    max_steps_field: str | None = None  # the suite's own name for `max_steps_in_episode`, renamed to it


_BRAX_ENVS = ("ant", "halfcheetah", "hopper", "humanoid", "humanoidstandup", "inverted_double_pendulum",
              "inverted_pendulum", "pusher", "reacher", "swimmer", "walker2d")

SUITES = (
    # Brax's envs reset each on its own; the others as a batch, one fresh episode per env (as they always have).
    Suite("brax:", "brax", "brax", "brax", "BraxEnv", "brax:ant", share=None, libraries=("mujoco",),
          max_steps_field="episode_length",
          env_defaults={name: dict(total_timesteps=1_000_000, num_envs=16, num_steps=128, num_minibatches=32,
                                   update_epochs=10, lr=3e-4, ent_coef=0.0) for name in _BRAX_ENVS},
          defaults_source="docs/defaults.md#brax"),
    # A Craftax world costs about a dozen steps (benchmarks/README.md, "Craftax resets"): a sixteenth of the
    # batch gets a fresh one each step, enough while episodes last 16 steps or more.
    Suite("craftax:", "craftax", "craftax", "craftax", "CraftaxEnv", "craftax:Craftax-Classic-Symbolic-v1", share=16,
          max_steps_field="max_timesteps",
          defaults=dict(total_timesteps=2_000_000, num_envs=64, num_steps=64, num_minibatches=8,
                        hidden_sizes=(256, 256), lr=2e-4, gae_lambda=0.8, ent_coef=0.01)),
    Suite("jumanji:", "jumanji", "jumanji", "jumanji", "JumanjiEnv", "jumanji:Snake-v1", max_steps_field="time_limit",
          defaults=dict(total_timesteps=1_000_000, num_envs=64, num_steps=64, num_minibatches=8, activation="relu",
                        lr=1e-3)),
    Suite("xminigrid:", "xminigrid", "xminigrid", "xminigrid", "XMiniGridEnv", "xminigrid:MiniGrid-Empty-8x8",
          max_steps_field="max_steps",
          defaults=dict(total_timesteps=500_000, num_envs=16, num_steps=64)),
    Suite("navix:", "navix", "navix", "navix", "NavixEnv", "navix:Navix-Empty-5x5-v0", max_steps_field="max_steps",
          defaults=dict(total_timesteps=500_000, num_envs=16, num_steps=64)),
)
"""Every suite the package knows, its row all there is to it besides its adapter module (docs/architecture.md,
"A new suite"). Read where it is used (`env_ids.SUITES`), not copied at import: a test plants a suite here."""


def named_prefixes() -> tuple[str, ...]:
    """The prefixes of the ids that name an env of a suite this package knows: such an id imports no code of the
    user's."""
    return tuple(suite.prefix for suite in SUITES)


NAMED_PREFIXES = named_prefixes()  # as shipped
_FACTORY_ID = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def is_factory_id(env_id: str) -> bool:
    """Whether `env_id` reads "package.module:factory": making its env imports that module and calls that
    function. gymnax ids have no colon, and the suites' ids (`named_prefixes`) are not factory ids."""
    return bool(_FACTORY_ID.match(env_id)) and not env_id.startswith(named_prefixes())
