"""A sweep's plan: which runs it trains. Every configuration of a grid of numeric hyperparameters with every
seed, as rows of one flat `[runs]` axis, configuration-major (run `c * num_seeds + s` is configuration `c` with
seed `s`). Only numeric hyperparameters (pytree leaves of `PPOConfig`) can be swept in one program: a structural
field changes array shapes, so each of its values needs a program of its own.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from purejaxppo.core.config import NUMERIC_FIELDS, STRUCTURAL_FIELDS, PPOConfig


def check_grid(config: PPOConfig, grid: dict[str, Sequence[float]]) -> dict[str, tuple[float, ...]]:
    """Validates a grid: numeric fields only, each with one or more values that are valid for `config`."""
    checked = {}
    for name, values in grid.items():
        if name in STRUCTURAL_FIELDS:
            raise ValueError(
                f"cannot sweep {name}: it is a structural field that changes array shapes or the program, so "
                f"each value needs its own compiled program; run one sweep per value. Sweepable: "
                f"{', '.join(NUMERIC_FIELDS)}")
        if name not in NUMERIC_FIELDS:
            raise ValueError(f"cannot sweep {name}: not a PPOConfig field. Sweepable: {', '.join(NUMERIC_FIELDS)}")
        values = tuple(float(v) for v in np.atleast_1d(values))
        if not values:
            raise ValueError(f"the sweep of {name} has no values")
        for v in values:
            dataclasses.replace(config, **{name: v})  # raises ValueError for a bad value
        checked[name] = values
    return checked


def repeated_value(values: Sequence[float]) -> float | None:
    """The first of `values` that another before it equals as the program holds it (float32: 0.001 and
    0.0010000000000000002 are one value there), or None."""
    held = [float(np.float32(v)) for v in values]
    return next((values[i] for i, v in enumerate(held) if v in held[:i]), None)


def count_runs(num_seeds: int, grid: dict[str, Any]) -> int:
    """Runs of a sweep: every configuration of the product grid with every seed."""
    return num_seeds * int(np.prod([len(v) for v in grid.values()]))


@dataclasses.dataclass(frozen=True)
class SweepPlan:
    """The runs of a sweep: `config` with every configuration of `grid`, each with every seed of `seeds`."""

    config: PPOConfig
    grid: dict[str, tuple[float, ...]]  # swept field -> its values, in the order given
    seeds: tuple[int, ...]  # configuration c, seed s trains with jax.random.key(seeds[s])
    zipped: bool = False  # the grid lists every configuration's values (all of one length), not a product

    @property
    def num_seeds(self) -> int:
        return len(self.seeds)

    @functools.cached_property
    def combos(self) -> list[tuple[float, ...]]:
        """Every configuration's swept values, in the order of `grid`; `[()]` for an empty grid."""
        if self.zipped:
            return list(zip(*self.grid.values()))
        return list(itertools.product(*self.grid.values()))

    @functools.cached_property
    def num_runs(self) -> int:
        return self.num_seeds * len(self.combos)

    def hyperparams(self) -> dict[str, np.ndarray]:
        """Each swept field's value per configuration, `[C]`."""
        return {name: np.asarray([c[i] for c in self.combos]) for i, name in enumerate(self.grid)}

    def rows(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The `[runs]` rows on the host: every numeric field's value per run (swept or not; a None field, which
        defaults to another, stays absent unless swept), float32, and every run's raw key (uint32)."""
        num_runs, combos = self.num_runs, self.combos
        values = {name: np.full(num_runs, getattr(self.config, name), np.float32) for name in NUMERIC_FIELDS
                  if getattr(self.config, name) is not None}
        for i, name in enumerate(self.grid):
            values[name] = np.repeat(np.asarray([combo[i] for combo in combos], np.float32), self.num_seeds)
        keys = np.asarray(jax.random.key_data(jax.vmap(jax.random.key)(jnp.asarray(self.seeds))))
        return values, np.tile(keys, (len(combos),) + (1,) * (keys.ndim - 1))


SEED_LIMIT = 2**31
"""Seeds are integers in [0, SEED_LIMIT): `jax.random.key` takes 32 bits, so a larger seed would silently train
the seed it wraps to."""


MAX_RUNS = 2**20
"""The most runs (seeds, or trials) one command takes: a million, far past what fits in any device's memory, and
small enough that their list is made before the memory check refuses them."""


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def check_seeds(seed: Any, num_seeds: Any) -> None:
    """Raises ValueError unless `num_seeds` is 1 to MAX_RUNS and seeds `seed` to `seed + num_seeds - 1` are all
    integers in [0, 2^31)."""
    if not _is_int(num_seeds) or not 1 <= num_seeds <= MAX_RUNS:
        raise ValueError(f"num_seeds={num_seeds!r} is invalid: must be an integer from 1 to {MAX_RUNS:,}")
    if not _is_int(seed) or not 0 <= seed or seed + num_seeds > SEED_LIMIT:
        last = f"; with {num_seeds} seeds, at most {SEED_LIMIT - num_seeds}" if num_seeds > 1 else ""
        raise ValueError(f"seed={seed!r} is invalid: seeds are integers in [0, 2^31){last}")


def make_plan(config: PPOConfig, num_seeds: int = 1, seed: int = 0,
              grid: dict[str, Sequence[float]] | None = None, zipped: bool = False) -> SweepPlan:
    """The plan of `num_seeds` seeds from `seed` of every configuration of `grid` (its product, or with `zipped`
    the configurations it lists: its i-th values are configuration i's); ValueError for bad input."""
    check_seeds(seed, num_seeds)
    grid = check_grid(config, grid or {})
    if zipped and len({len(v) for v in grid.values()}) > 1:
        raise ValueError(f"the configurations list {', '.join(f'{len(v)} {k}' for k, v in grid.items())} values: "
                         "each field needs one value per configuration")
    for name, values in grid.items():
        repeated = None if zipped else repeated_value(values)
        if repeated is not None:  # the same config trained twice, ranked against itself
            raise ValueError(f"the sweep lists {name}={repeated:g} twice: give each value once")
    return SweepPlan(config, grid, tuple(range(int(seed), int(seed) + int(num_seeds))), zipped)
