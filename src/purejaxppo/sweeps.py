"""Sweeps: a grid of numeric hyperparameters x seeds, trained as ONE jit-compiled, vmapped program.

The grid's configurations and the seeds form one flat `[runs]` axis (configuration-major), vmapped over and
split across every device of every process. Only numeric hyperparameters (pytree leaves of `PPOConfig`) can be
swept this way: a structural field changes array shapes, so each of its values needs its own program.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from purejaxppo.config import NUMERIC_FIELDS, STRUCTURAL_FIELDS, PPOConfig
from purejaxppo.parallel import gather, pad_rows, runs_mesh, shard_rows
from purejaxppo.results import SweepResult
from purejaxppo.train import make_trainer, scan_updates


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


class Sweep:
    """A sweep prepared to run: `Sweep(...).run()` is `sweep(...)`, with compilation and training separate
    (`compile()` then `run()`) for callers that time or report them apart."""

    def __init__(
        self,
        config: PPOConfig,
        num_seeds: int = 1,
        seed: int = 0,
        callback: Callable[[dict[str, Any]], None] | None = None,
        devices: Sequence[jax.Device] | None = None,
        **grid: Sequence[float],
    ):
        if num_seeds < 1:
            raise ValueError(f"num_seeds={num_seeds} is invalid: must be at least 1")
        self.config, self.num_seeds, self.grid = config, num_seeds, check_grid(config, grid)
        make_trainer(config)  # an env that cannot be made fails here, before anything compiles
        self.combos = list(itertools.product(*self.grid.values()))  # [()] for an empty grid: one configuration
        self.num_runs = num_runs = len(self.combos) * num_seeds
        # One row per run, configuration-major: every numeric field (swept or not) and the run's key.
        values = {name: np.full(num_runs, getattr(config, name), np.float32) for name in NUMERIC_FIELDS}
        for i, name in enumerate(self.grid):
            values[name] = np.repeat(np.asarray([combo[i] for combo in self.combos], np.float32), num_seeds)
        self.seeds = np.arange(seed, seed + num_seeds)
        keys = np.asarray(jax.random.key_data(jax.vmap(jax.random.key)(jnp.asarray(self.seeds))))
        keys = np.tile(keys, (len(self.combos),) + (1,) * (keys.ndim - 1))
        mesh = runs_mesh(devices)
        self.rows = shard_rows(pad_rows((values, keys), mesh.size), mesh)
        if callback is not None:  # drop the padding rows before the caller sees them
            user_callback = callback
            callback = lambda metrics: user_callback(jax.tree.map(lambda x: x[:num_runs], metrics))
        self.program = jax.jit(_sweep_program(config, callback, NamedSharding(mesh, PartitionSpec())))
        self.compiled = None
        self.compile_seconds = 0.0

    def compile(self) -> float:
        """Compiles the program once; returns the seconds it took."""
        start = time.perf_counter()
        self.compiled = self.program.lower(*self.rows).compile()
        self.compile_seconds = time.perf_counter() - start
        return self.compile_seconds

    def run(self) -> SweepResult:
        """Trains every run (compiling first if needed) and gathers the results on every process."""
        if self.compiled is None:
            self.compile()
        start = time.perf_counter()
        params, metrics = gather(jax.block_until_ready(self.compiled(*self.rows)))
        train_seconds = time.perf_counter() - start
        shape = (len(self.combos), self.num_seeds)
        by_config = lambda x: np.asarray(x)[:self.num_runs].reshape(shape + x.shape[1:])
        return SweepResult(
            config=self.config,
            hyperparams={name: np.asarray([c[i] for c in self.combos]) for i, name in enumerate(self.grid)},
            seeds=self.seeds,
            metrics=jax.tree.map(by_config, metrics),
            params=jax.tree.map(by_config, params),
            compile_seconds=self.compile_seconds,
            train_seconds=train_seconds,
        )


def _sweep_program(config: PPOConfig, callback: Callable | None, replicated: NamedSharding) -> Callable:
    """`(values, keys) -> (params, metrics)` over a `[runs]` axis: each run's numeric fields and raw key."""

    def trainer(row_values):
        return make_trainer(dataclasses.replace(config, **row_values))

    def sweep_program(row_values, row_keys):
        init = jax.vmap(lambda v, k: trainer(v).init(jax.random.wrap_key_data(k)))
        step = jax.vmap(lambda v, state: trainer(v).update_step(state))

        def update_step(state):
            state, metrics = step(row_values, state)
            if callback is not None:  # one all-gather of the few metrics, rather than XLA's fallback per value
                metrics = jax.lax.with_sharding_constraint(metrics, replicated)
            return state, metrics

        state, metrics = scan_updates(update_step, init(row_values, row_keys), config.num_updates, callback)
        return state.params, jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), metrics)  # [runs, num_updates]

    return sweep_program


def sweep(
    config: PPOConfig,
    num_seeds: int = 1,
    seed: int = 0,
    callback: Callable[[dict[str, Any]], None] | None = None,
    devices: Sequence[jax.Device] | None = None,
    **grid: Sequence[float],
) -> SweepResult:
    """Trains every configuration of the product `grid` over `num_seeds` seeds in one compiled program.

    Example: `sweep(config, num_seeds=16, lr=[1e-4, 3e-4, 1e-3], ent_coef=[0.0, 0.01])` trains 6 x 16 runs.
    Seed s of every configuration uses `jax.random.key(seed + s)`, so each run equals
    `make_train(result.config_at(c))(jax.random.key(seed + s))`. The runs are split over `devices` (default: all
    devices of all processes), padded to a multiple of their number. `callback` gets each update's metrics,
    each `[C * S]` (configuration-major). Raises ValueError for a structural or unknown field or a bad value.
    """
    return Sweep(config, num_seeds, seed, callback, devices, **grid).run()
