"""Sweeps: a grid of numeric hyperparameters x seeds, trained as ONE jit-compiled, vmapped program.

A sweep is a plan (`purejaxppo.scale.plan`: which runs), a program (`purejaxppo.scale.program`: their training
as one function over the `[runs]` rows, placed on devices, compiled) and this module's driver, which moves the
rows' state through the program in chunks of updates and gathers the result.
"""

from __future__ import annotations

import functools
import math
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import jax
import numpy as np

from purejaxppo.core.config import PPOConfig
from purejaxppo.core.envs import run_env
from purejaxppo.core.train import checked_trainer
from purejaxppo.scale.memory import check_sweep_fits
from purejaxppo.scale.parallel import gather, pad_rows, shard_rows
from purejaxppo.scale.plan import make_plan
from purejaxppo.scale.program import Compiled, ProgramArgs, SweepProgram, SweepState, place_envs, place_runs
from purejaxppo.scale.results import SweepResult
from purejaxppo.scale.schedule import next_stop, one_percent, report_interval
from purejaxppo.scale.stats import final_returns


class Sweep:
    """A sweep prepared to run. `Sweep(...).run()` is `sweep(...)`; the parts are there for callers that time
    compilation apart (`compile`) or stop and resume between updates (`init`, `advance` or `chunks`, `result`),
    as the CLI does to checkpoint. However it is split, a sweep computes the same bits."""

    def __init__(
        self,
        config: PPOConfig,
        num_seeds: int = 1,
        seed: int = 0,
        callback: Callable[[dict[str, Any]], None] | None = None,
        devices: Sequence[jax.Device] | None = None,
        data_parallel: bool = False,
        configurations: dict[str, Sequence[float]] | None = None,
        env: Any = None,
        network: Any = None,
        **grid: Sequence[float],
    ):
        """See `sweep`. `callback` is called after every hundredth of the run's updates and after the last.
        With `data_parallel`, the sweep is one run whose envs are split over `devices` (default: all local).
        `configurations`, instead of a product `grid`, lists the configurations themselves: its i-th values are
        configuration i's (a tuner's trials). `env`: see `make_train`; every run of the sweep trains that one.
        `network`: your own, as `make_train` takes it."""
        if isinstance(env, list):  # env=[...] asks to sweep env ids, which make_plan refuses by name
            grid, env = {**grid, "env": env}, None
        if configurations is not None and grid:
            raise ValueError("give a product grid or a list of configurations, not both")
        self.plan = plan = make_plan(config, num_seeds, seed, configurations or grid, zipped=configurations is not None)
        if data_parallel and (plan.num_seeds > 1 or plan.grid):
            raise ValueError("data parallelism trains one run: use it without a sweep grid and with one seed")
        self.env = run_env(config.env, config.env_kwargs, env)  # made and checked once, for every run and trace
        trainer = checked_trainer(config, env=self.env, network=network)  # a policy the env cannot have fails here
        self.placement = place_envs(config, devices) if data_parallel else place_runs(plan.num_runs, devices)
        check_sweep_fits(trainer, config, self.placement, plan.num_runs, data_parallel)
        self.rows = shard_rows(pad_rows(plan.rows(), self.placement.multiple), self.placement.rows)
        if callback is not None:  # drop the padding rows before the caller sees them
            user_callback = callback
            callback = lambda metrics: user_callback(jax.tree.map(lambda x: x[:plan.num_runs], metrics))
        self.program = SweepProgram(plan, self.placement, callback, self.env, network)
        self.compiled: Compiled | None = None

    # The plan's and placement's figures, under the names callers have used.
    config = property(lambda self: self.plan.config)
    grid = property(lambda self: self.plan.grid)
    num_seeds = property(lambda self: self.plan.num_seeds)
    num_runs = property(lambda self: self.plan.num_runs)
    combos = property(lambda self: self.plan.combos)
    seeds = functools.cached_property(lambda self: np.asarray(self.plan.seeds))
    mesh = property(lambda self: self.placement.mesh)
    compile_seconds = property(lambda self: self.compiled.seconds if self.compiled else 0.0)
    program_cached = property(lambda self: bool(self.compiled and self.compiled.cached))

    def compile(self, program_cache: Path | None = None) -> float:
        """Compiles the program (any number of updates, from the start or not); returns the seconds it took.
        With `program_cache`, a directory, the traced program is kept there (see `SweepProgram.compile`)."""

        def make_args():
            initial = self.init()
            return ProgramArgs(tuple(self.rows), initial.state, initial.metrics, np.int32(0), np.int32(0))

        self.compiled = self.program.compile(self.rows, make_args, program_cache)
        return self.compiled.seconds

    def init(self) -> SweepState:
        """The state before the first update: placeholder zeros, which the first `advance` initializes."""
        shapes = self.compiled.state_shapes if self.compiled and self.compiled.state_shapes else jax.eval_shape(
            self.program.init_fn, *self.rows)
        zeros = jax.tree.map(lambda x: np.zeros((self.num_runs,) + x.shape[1:], x.dtype), shapes)
        return self.to_devices(SweepState(*zeros, 0))

    def advance(self, progress: SweepState, num_updates: int) -> SweepState:
        """`num_updates` more updates of every run (at most the updates left); compiles first if need be."""
        if self.compiled is None:
            self.compile()
        num_updates = min(num_updates, self.config.num_updates - progress.done)
        state, metrics = self.compiled.advance(*self.rows, progress.state, progress.metrics, progress.done,
                                               progress.done + num_updates)
        return SweepState(state, metrics, progress.done + num_updates)

    def chunks(self, progress: SweepState, stop: int | None = None, every: Sequence[int] = (), adapt: bool = True,
               until: Callable[[], bool] | None = None) -> Iterator[tuple[SweepState, float]]:
        """Advances `progress` to update `stop` (default: the last) chunk by chunk, yielding after each the state
        (computed: its metrics are ready) and the seconds it took. A chunk is about half a second of training and
        at least 1% of the run (`purejaxppo.scale.schedule`), and ends early at a multiple of any of `every`. With
        `adapt` False every chunk is 1% (processes of one program must cut the same chunks); `until`, asked
        before each chunk, ends the advance early when it answers True."""
        stop = self.config.num_updates if stop is None else stop
        chunk = report_interval(None, self.config.num_updates)
        while progress.done < stop and not (until is not None and until()):
            before, start = progress.done, time.perf_counter()
            progress = self.advance(progress, next_stop(before, stop, chunk, *every) - before)
            jax.block_until_ready(progress.metrics)
            seconds = time.perf_counter() - start
            if adapt:
                chunk = report_interval(seconds / (progress.done - before), self.config.num_updates)
            yield progress, seconds

    def to_host(self, progress: SweepState) -> SweepState:
        """`progress` as numpy arrays on every process, without padding rows: what a checkpoint holds."""
        state, metrics = jax.tree.map(lambda x: np.asarray(x)[:self.num_runs],
                                      gather((progress.state, progress.metrics)))
        return SweepState(state, metrics, progress.done)

    def to_devices(self, progress: SweepState) -> SweepState:
        """A host `progress` (from `to_host`, or restored from a checkpoint) back on this sweep's devices."""
        state, metrics = shard_rows(pad_rows((progress.state, progress.metrics), self.placement.multiple),
                                    self.placement.rows)
        return SweepState(state, metrics, progress.done)

    def recent_returns(self, progress: SweepState, fraction: float = 0.05) -> np.ndarray:
        """Each run's final return as if it ended at `progress.done`: the mean episode return over its last
        `fraction` of `num_updates` updates done, `[runs]` (`stats.final_returns`; NaN where no episode ended
        in them). At the run's end, its final return."""
        window = min(max(1, math.ceil(self.config.num_updates * fraction)), self.config.num_updates)
        start = max(progress.done - window, 0)  # one window's width always: one compilation for every chunk
        tail = np.asarray(gather(_update_columns(progress.metrics["episode_return"], start, window)), np.float64)
        tail[:, progress.done - start:] = np.nan  # updates not done yet, early in a run
        return final_returns(tail[:self.num_runs], fraction=1.0)

    def first_divergence(self, progress: SweepState, start: int = 0) -> tuple[int, int] | None:
        """`(update, run)`: the first update after `start` (1-based) at which a run's loss or parameters turned
        non-finite (its `diverged` metric), and the first such run; None when none did."""
        flags = np.asarray(gather(progress.metrics["diverged"]))[:self.num_runs, start:progress.done]
        if not flags.any():
            return None
        update = int(np.argmax(flags.any(axis=0)))
        return start + update + 1, int(np.argmax(flags[:, update]))

    def result(self, progress: SweepState, train_seconds: float = 0.0, params: bool = True) -> SweepResult:
        """The runs so far, gathered on every process, on named axes (configuration, seed); without the final
        parameters (`params=None` in the result, and less to gather) when `params` is False."""
        gathered = gather((progress.metrics, progress.state.params if params else None))
        metrics, final_params = jax.tree.map(lambda x: np.asarray(x)[:self.num_runs], gathered)
        by_config = lambda x: x.reshape((len(self.combos), self.num_seeds) + x.shape[1:])
        return SweepResult(
            config=self.config,
            hyperparams=self.plan.hyperparams(),
            seeds=self.seeds,
            metrics=jax.tree.map(lambda x: by_config(x[:, :progress.done]), metrics),
            params=jax.tree.map(by_config, final_params),
            compile_seconds=self.compile_seconds,
            train_seconds=train_seconds,
        )

    def run(self, loggers: Sequence[Any] = (), log_every: int | None = None) -> SweepResult:
        """Trains every run to the end and gathers the results on every process. With `loggers` (each with
        `log(result, start, stop)` and `close()`, as `purejaxppo.io.loggers` has them), it trains chunk by chunk
        and gives each logger the updates of every chunk (a chunk ends at each multiple of `log_every`, default
        1% of the run, and more often where chunks are short), closing them at the end; the bits are the same
        either way."""
        if log_every is not None and (isinstance(log_every, bool) or not isinstance(log_every, int) or log_every < 1):
            raise ValueError(f"log_every={log_every!r} is invalid: give a positive number of updates, or None for 1% "
                             "of the run")
        if self.compiled is None:
            self.compile()
        if not loggers:
            start = time.perf_counter()
            progress = self.advance(self.init(), self.config.num_updates)
            jax.block_until_ready(progress.metrics)
            return self.result(progress, time.perf_counter() - start)
        progress, seconds = self.init(), 0.0
        try:
            every = (log_every or one_percent(self.config.num_updates),)
            # processes of one program must cut the same chunks: only one alone adapts them to its timing
            for advanced, chunk_seconds in self.chunks(progress, every=every, adapt=jax.process_count() == 1):
                before, progress, seconds = progress.done, advanced, seconds + chunk_seconds
                so_far = self.result(progress, params=False)
                for logger in loggers:
                    logger.log(so_far, before, progress.done)
        finally:
            for logger in loggers:
                logger.close()
        return self.result(progress, seconds)


@functools.partial(jax.jit, static_argnums=2)
def _update_columns(x: jax.Array, start: int, length: int) -> jax.Array:
    """`x[:, start:start + length]` of a `[runs, num_updates]` metric; `start` traced, so one compilation serves
    every chunk."""
    return jax.lax.dynamic_slice_in_dim(x, start, length, axis=1)


def sweep(
    config: PPOConfig,
    num_seeds: int = 1,
    seed: int = 0,
    callback: Callable[[dict[str, Any]], None] | None = None,
    devices: Sequence[jax.Device] | None = None,
    env: Any = None,
    network: Any = None,
    loggers: Sequence[Any] = (),
    log_every: int | None = None,
    **grid: Sequence[float],
) -> SweepResult:
    """Trains every configuration of the product `grid` over `num_seeds` seeds in one compiled program.

    Example: `sweep(config, num_seeds=16, lr=[1e-4, 3e-4, 1e-3], ent_coef=[0.0, 0.01])` trains 6 x 16 runs.
    Seed s of every configuration uses `jax.random.key(seed + s)`, so each run equals
    `make_train(result.config_at(c))(jax.random.key(seed + s))`. The runs are split over `devices` (default: all
    devices of all processes; in one process, no more of them than there are runs), padded to a multiple of their
    number. On a CPU, `purejaxppo.scale.compilation.use_cpu_cores()` before JAX's first computation makes each
    core a device, so the runs spread over the cores. `callback` gets the metrics of every hundredth update and
    of the last, each `[C * S]` (configuration-major). `env` and `network`: your own, as `make_train` takes them.
    `loggers` get the metrics as training goes, every `log_every` updates (default 1% of the run), as the CLI's do:
    `purejaxppo.CSVLogger(path)`, `ProgressBar()`, `TensorBoardLogger(log_dir)`, `WandbLogger(project, run_dir)`,
    or your own with `log(result, start, stop)` and `close()` (docs/architecture.md, "A logger").
    """
    return Sweep(config, num_seeds, seed, callback, devices, env=env, network=network, **grid).run(loggers, log_every)
