"""Sweeps: a grid of numeric hyperparameters x seeds, trained as ONE jit-compiled, vmapped program.

The grid's configurations and the seeds form one flat `[runs]` axis (configuration-major), vmapped over and
split across every device of every process. Only numeric hyperparameters (pytree leaves of `PPOConfig`) can be
swept this way: a structural field changes array shapes, so each of its values needs its own program.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import NamedSharding, PartitionSpec

from purejaxppo.compilation import compiler_options
from purejaxppo.config import NUMERIC_FIELDS, STRUCTURAL_FIELDS, PPOConfig
from purejaxppo.parallel import env_sharding, gather, pad_rows, runs_sharding, shard_rows
from purejaxppo.program_cache import load_or_export, program_key
from purejaxppo.results import SweepResult
from purejaxppo.train import TrainState, make_trainer


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


@struct.dataclass
class SweepState:
    """Where a sweep stands: every run's training state and the metrics so far, all with leading `[runs]`."""

    state: TrainState  # its key as raw key data (uint32), so that it can be saved
    metrics: dict[str, jax.Array]  # [runs, num_updates]; entries past `done` are zeros
    done: int = struct.field(pytree_node=False)  # updates done


class Sweep:
    """A sweep prepared to run. `Sweep(...).run()` is `sweep(...)`; the parts are there for callers that time
    compilation apart (`compile`) or stop and resume between updates (`init`, `advance`, `result`), as the CLI
    does to checkpoint. However it is split, a sweep computes the same bits."""

    def __init__(
        self,
        config: PPOConfig,
        num_seeds: int = 1,
        seed: int = 0,
        callback: Callable[[dict[str, Any]], None] | None = None,
        devices: Sequence[jax.Device] | None = None,
        data_parallel: bool = False,
        **grid: Sequence[float],
    ):
        """See `sweep`. `callback` is called after every hundredth of the run's updates and after the last.
        With `data_parallel`, the sweep is one run whose envs are split over `devices` (default: all local)."""
        if num_seeds < 1:
            raise ValueError(f"num_seeds={num_seeds} is invalid: must be at least 1")
        if data_parallel and (num_seeds > 1 or grid):
            raise ValueError("data parallelism trains one run: use it without a sweep grid and with one seed")
        self.config, self.num_seeds, self.grid = config, num_seeds, check_grid(config, grid)
        make_trainer(config)  # an env that cannot be made fails here, before anything compiles
        self.combos = list(itertools.product(*self.grid.values()))  # [()] for an empty grid: one configuration
        self.num_runs = num_runs = len(self.combos) * num_seeds
        # One row per run, configuration-major: every numeric field (swept or not; None ones, which default to
        # another field, stay None unless swept) and the run's key.
        values = {name: np.full(num_runs, getattr(config, name), np.float32) for name in NUMERIC_FIELDS
                  if getattr(config, name) is not None}
        for i, name in enumerate(self.grid):
            values[name] = np.repeat(np.asarray([combo[i] for combo in self.combos], np.float32), num_seeds)
        self.seeds = np.arange(seed, seed + num_seeds)
        keys = np.asarray(jax.random.key_data(jax.vmap(jax.random.key)(jnp.asarray(self.seeds))))
        keys = np.tile(keys, (len(self.combos),) + (1,) * (keys.ndim - 1))
        if data_parallel:  # one run, replicated; its envs split over the devices
            self.mesh, shard_envs = env_sharding(config, devices)
            self.row_sharding, self.row_multiple = NamedSharding(self.mesh, PartitionSpec()), 1
        else:  # runs split over the devices, padded to a multiple of their number
            self.row_sharding, shard_envs = runs_sharding(devices, num_runs), None
            self.mesh = self.row_sharding.mesh
            self.row_multiple = self.mesh.size
        self.rows = shard_rows(pad_rows((values, keys), self.row_multiple), self.row_sharding)
        if callback is not None:  # drop the padding rows before the caller sees them
            user_callback = callback
            callback = lambda metrics: user_callback(jax.tree.map(lambda x: x[:num_runs], metrics))
        self._init_fn, self._program = _sweep_programs(
            config, callback, NamedSharding(self.mesh, PartitionSpec()), shard_envs)
        self._advance = jax.jit(self._program, donate_argnums=(2, 3), compiler_options=compiler_options())
        # A host callback cannot be exported; on one device, no sharding needs to be part of the cache key.
        self._cacheable = callback is None and self.mesh.size == 1
        self._state_shapes = None  # (state, metrics) as the cached program takes them, when it was loaded
        self.compile_seconds = 0.0
        self.program_cached = False  # whether `compile` loaded the traced program from its cache

    def compile(self, program_cache: Path | None = None) -> float:
        """Compiles the program (any number of updates, from the start or not); returns the seconds it took.

        With `program_cache`, a directory, the traced program is kept there (`purejaxppo.program_cache`), and a
        later sweep of the same program loads it rather than tracing it again: with JAX's compilation cache on
        too, a warm start neither traces nor compiles. Single-device sweeps without a callback only; others
        trace as usual.
        """
        start = time.perf_counter()
        if program_cache is not None and self._cacheable:
            self._compile_cached(Path(program_cache))
        else:
            initial = self.init()
            self._advance = self._advance.lower(*self.rows, initial.state, initial.metrics, 0, 0).compile()
        self.compile_seconds = time.perf_counter() - start
        return self.compile_seconds

    def _compile_cached(self, directory: Path) -> None:
        def make_args():
            initial = self.init()
            return (*self.rows, initial.state, initial.metrics, np.int32(0), np.int32(0))

        key = program_key({"kind": "sweep", "config": self.config.to_dict(), "swept": list(self.grid),
                           "runs": self.num_runs})
        exported, (in_tree, out_tree), self.program_cached = load_or_export(directory, key, self._program,
                                                                             make_args)
        *_, state, metrics, _, _ = jax.tree.unflatten(in_tree, exported.in_avals)
        self._state_shapes = (state, metrics)
        fixed = len(jax.tree.leaves(self.rows))
        compiled = jax.jit(exported.call, donate_argnums=tuple(range(fixed, len(exported.in_avals) - 2)),
                           compiler_options=compiler_options()).lower(
            *[jax.ShapeDtypeStruct(a.shape, a.dtype) for a in exported.in_avals]).compile()

        def advance(*args):
            *arrays, start, stop = args
            flat = jax.tree.leaves((*arrays, np.int32(start), np.int32(stop)))
            return jax.tree.unflatten(out_tree, compiled(*flat))

        self._advance = advance

    def init(self) -> SweepState:
        """The state before the first update: placeholder zeros, which the first `advance` initializes (in the
        same program as the updates, which compiles faster than two programs)."""
        shapes = self._state_shapes or jax.eval_shape(self._init_fn, *self.rows)
        zeros = jax.tree.map(lambda x: np.zeros((self.num_runs,) + x.shape[1:], x.dtype), shapes)
        return self.to_devices(SweepState(*zeros, 0))

    def advance(self, progress: SweepState, num_updates: int) -> SweepState:
        """`num_updates` more updates of every run (at most the updates left)."""
        num_updates = min(num_updates, self.config.num_updates - progress.done)
        state, metrics = self._advance(*self.rows, progress.state, progress.metrics, progress.done,
                                       progress.done + num_updates)
        return SweepState(state, metrics, progress.done + num_updates)

    def to_host(self, progress: SweepState) -> SweepState:
        """`progress` as numpy arrays on every process, without padding rows: what a checkpoint holds."""
        state, metrics = jax.tree.map(lambda x: np.asarray(x)[:self.num_runs],
                                      gather((progress.state, progress.metrics)))
        return SweepState(state, metrics, progress.done)

    def to_devices(self, progress: SweepState) -> SweepState:
        """A host `progress` (from `to_host`, or restored from a checkpoint) back on this sweep's devices."""
        state, metrics = shard_rows(pad_rows((progress.state, progress.metrics), self.row_multiple),
                                    self.row_sharding)
        return SweepState(state, metrics, progress.done)

    def latest_metrics(self, progress: SweepState) -> dict[str, np.ndarray]:
        """The metrics of the last update done, each `[runs]`, on every process (what a progress display shows)."""
        last = _update_column(progress.metrics, progress.done - 1)
        return jax.tree.map(lambda x: np.asarray(x)[:self.num_runs], gather(last))

    def result(self, progress: SweepState, train_seconds: float = 0.0, params: bool = True) -> SweepResult:
        """The runs so far, gathered on every process, on named axes (configuration, seed); without the final
        parameters (`params=None` in the result, and less to gather) when `params` is False."""
        gathered = gather((progress.metrics, progress.state.params if params else None))
        metrics, final_params = jax.tree.map(lambda x: np.asarray(x)[:self.num_runs], gathered)
        by_config = lambda x: x.reshape((len(self.combos), self.num_seeds) + x.shape[1:])
        return SweepResult(
            config=self.config,
            hyperparams={name: np.asarray([c[i] for c in self.combos]) for i, name in enumerate(self.grid)},
            seeds=self.seeds,
            metrics=jax.tree.map(lambda x: by_config(x[:, :progress.done]), metrics),
            params=jax.tree.map(by_config, final_params),
            compile_seconds=self.compile_seconds,
            train_seconds=train_seconds,
        )

    def run(self) -> SweepResult:
        """Trains every run to the end and gathers the results on every process."""
        if not self.compile_seconds:
            self.compile()
        start = time.perf_counter()
        progress = self.advance(self.init(), self.config.num_updates)
        jax.block_until_ready(progress.metrics)
        return self.result(progress, time.perf_counter() - start)


@jax.jit
def _update_column(metrics: dict[str, jax.Array], update: jax.Array) -> dict[str, jax.Array]:
    """Every run's metrics of one update, `[runs, num_updates]` -> `[runs]`; the update is traced, so one
    compilation serves them all (eager `x[:, i]` would compile one program per index)."""
    return jax.tree.map(lambda x: jax.lax.dynamic_index_in_dim(x, update, axis=1, keepdims=False), metrics)


def _sweep_programs(config: PPOConfig, callback: Callable | None, replicated: NamedSharding,
                    shard_envs: Callable | None):
    """The two programs of a sweep over a `[runs]` axis of numeric fields `values` and raw keys:
    `sweep_init(values, keys) -> (state, metrics buffer)` and
    `sweep_program(values, keys, state, metrics, start, stop) -> (state, metrics)`: updates `start` to `stop`
    (traced, so one compilation serves every number of updates), initializing first when `start` is 0."""

    report_every = -(-config.num_updates // 100)

    def trainer(row_values):
        return make_trainer(dataclasses.replace(config, **row_values), shard_envs)

    # Jitted, so that their traces are cached: every `Sweep.init` and the program's init share one of each (tracing
    # an update takes ~1 s; the program's loop, traced under the runs' mesh, traces its own).
    init = jax.jit(jax.vmap(lambda v, k: trainer(v).init(jax.random.wrap_key_data(k))))
    step = jax.jit(jax.vmap(lambda v, s: trainer(v).update_step(s)))

    def sweep_init(row_values, row_keys):
        state = init(row_values, row_keys)
        _, metrics = jax.eval_shape(step, row_values, state)
        buffer = {k: jnp.zeros((m.shape[0], config.num_updates), m.dtype) for k, m in metrics.items()}
        return state.replace(key=jax.random.key_data(state.key)), buffer

    def sweep_program(row_values, row_keys, state, metrics, start, stop):
        state, metrics = jax.lax.cond(start == 0, lambda: sweep_init(row_values, row_keys), lambda: (state, metrics))

        def report(m):  # one all-gather of the few metrics, rather than XLA's fallback per value
            jax.debug.callback(callback, jax.lax.with_sharding_constraint(m, replicated))

        def body(i, carry):
            state, buffer = carry
            state, m = step(row_values, state)
            if callback is not None:  # a host round-trip costs ~0.2 ms: at most 100 a run, and the last update
                due = ((i + 1) % report_every == 0) | (i + 1 == config.num_updates)
                jax.lax.cond(due, report, lambda m: None, m)
            buffer = {k: buffer[k].at[:, i].set(m[k]) for k in buffer}
            return state, buffer

        state = state.replace(key=jax.random.wrap_key_data(state.key))
        state, metrics = jax.lax.fori_loop(start, stop, body, (state, metrics))
        return state.replace(key=jax.random.key_data(state.key)), metrics

    return sweep_init, sweep_program


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
    devices of all processes; in one process, no more of them than there are runs), padded to a multiple of their
    number. On a CPU, `purejaxppo.compilation.use_cpu_cores()` before JAX's first computation makes each core a
    device, so the runs spread over the cores. `callback` gets the metrics of every
    hundredth update and of the last, each `[C * S]` (configuration-major).
    """
    return Sweep(config, num_seeds, seed, callback, devices, **grid).run()
