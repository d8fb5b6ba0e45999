"""The training command: `python -m purejaxppo.run --env CartPole-v1 [--num-seeds N] [--sweep NAME=V1,V2]
[--<any config field> V]`.

Trains PPO with the env's tuned defaults (`PPOConfig.for_env`): every configuration of the sweep grid with every
seed in one compiled, vmapped program split over all devices (and hosts), or one run split over the devices with
--data-parallel. Writes config.json, metrics.csv, learning_curve.png and summary.json to `--out` (default
runs/<env>-<time>/). Bad input exits with status 2 and one line on stderr, before anything compiles or is written.

    main: parse ─► start_backend ─► plan_run ─► compile_and_restore ─► train_loop ─► write_outputs
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import jax
import numpy as np

from purejaxppo.cli.args import build_parser, config_from_args, output_dir, parse_sweeps, requested_runs, resumed_config
from purejaxppo.cli.progress import Progress
from purejaxppo.cli.startup import compile_cache_dir, defer_renderer_imports, quiet_xla_logs
from purejaxppo.core.config import PPOConfig
from purejaxppo.scale.compilation import cpu_cores, use_cpu_cores
from purejaxppo.scale.distributed import initialize_distributed
from purejaxppo.scale.schedule import next_stop, one_percent, report_interval

# The layers that import gymnax (which computes on import) are imported after `start_backend`: joining a
# multi-host program and choosing the CPU devices must come first.


@dataclasses.dataclass
class RunPlan:
    """Everything a run is decided to be before it compiles."""

    args: argparse.Namespace
    config: PPOConfig
    grid: dict[str, tuple[float, ...]]
    seeds: list[int]
    out: Path  # where results go (the resumed run's directory with --resume)
    job: Any  # the Sweep
    progress: Progress
    loggers: list[Any]
    checkpointer: Any = None  # opened at the first save, or at once to resume

    @property
    def writer(self) -> bool:
        """With several processes, process 0 reports and writes."""
        return jax.process_index() == 0

    def say(self, *args: Any) -> None:
        if self.writer:
            print(*args, flush=True)


def start_backend(args: argparse.Namespace) -> None:
    """Joins a multi-host program, or on a CPU makes a device per core the runs can use; then defers the
    renderers' imports. Before JAX's first computation."""
    if args.distributed or args.coordinator is not None:
        initialize_distributed(args.coordinator, args.num_processes, args.process_id)
    elif not args.data_parallel:  # on a CPU, several runs go to separate cores
        use_cpu_cores(min(cpu_cores(), requested_runs(args)))
    defer_renderer_imports()


def open_checkpointer(directory: Path | str):
    """A `purejaxppo.io.checkpoint.Checkpointer` on `directory`: orbax is imported when first needed, not at
    start-up (`_import_result_writers` loads it on a thread while the program compiles and trains)."""
    from purejaxppo.io.checkpoint import Checkpointer

    return Checkpointer(directory)


def _check_counts(args: argparse.Namespace) -> None:
    if args.num_seeds is not None and args.num_seeds < 1:
        raise ValueError(f"--num-seeds {args.num_seeds} is invalid: must be at least 1")
    if args.checkpoint_every < 0:
        raise ValueError(f"--checkpoint-every {args.checkpoint_every} is invalid: must be >= 0 (0: at the end)")
    if args.log_every < 0:
        raise ValueError(f"--log-every {args.log_every} is invalid: must be >= 0 (0: every 1% of the run)")


def plan_run(args: argparse.Namespace) -> RunPlan:
    """Validates the arguments and prepares the run; raises ValueError (one line) for bad input, before
    anything compiles or is written."""
    from purejaxppo.io.loggers import make_loggers
    from purejaxppo.scale.sweep import Sweep

    _check_counts(args)
    checkpointer = None
    if args.resume is not None:
        checkpointer = open_checkpointer(args.resume)
        meta = checkpointer.meta()
        config = resumed_config(args, meta)
        if meta["done"] >= config.num_updates:
            raise ValueError(f"--resume: the run in {args.resume} is complete ({meta['done']}/"
                             f"{config.num_updates} updates); to train more, start a new run with --out")
        grid, seeds, out = meta["sweep"], list(meta["seeds"]), args.resume
    else:
        config = config_from_args(args)
        grid, out = parse_sweeps(args.sweep), output_dir(args.out, config.env)
        seeds = list(range(args.seed or 0, (args.seed or 0) + (args.num_seeds or 1)))
    if args.data_parallel and (len(seeds) > 1 or grid):
        raise ValueError("--data-parallel trains one run split over the devices: use it without --sweep and "
                         "--num-seeds, or drop it to spread the runs over the devices")
    job = Sweep(config, len(seeds), seeds[0], data_parallel=args.data_parallel, **grid)  # checks the grid
    grid = job.plan.grid
    writer = jax.process_index() == 0
    progress = Progress(config.num_updates, config.batch_size, job.num_runs, quiet=args.quiet or not writer)
    loggers = make_loggers(out, args.tensorboard, args.wandb, args.wandb_project, config.to_dict()) if writer else []
    return RunPlan(args, config, grid, seeds, out, job, progress, loggers, checkpointer)


def _import_result_writers() -> None:
    """Imports what saving the results needs and the training does not (orbax, matplotlib), on a thread started
    as compilation begins: XLA compiles and trains without holding the GIL, so the imports overlap with them
    rather than adding to the command's wall time."""
    import matplotlib.figure  # noqa: F401

    import purejaxppo.io.checkpoint  # noqa: F401


def compile_and_restore(plan: RunPlan):
    """Compiles the program and returns the state training starts from: the first update's, or the resumed
    checkpoint's. Raises CheckpointError (a ValueError) when the checkpoint does not fit."""
    args, config, job = plan.args, plan.config, plan.job
    if args.compile_cache:
        jax.config.update("jax_compilation_cache_dir", str(compile_cache_dir()))
    num_runs = job.num_runs
    runs = f"{num_runs} run{'s' if num_runs > 1 else ''}" + (
        f" ({num_runs // len(plan.seeds)} configs x {len(plan.seeds)} seeds)" if plan.grid else "")
    plan.say(f"PPO on {config.env}: {config.num_envs} envs x {config.num_steps} steps, {config.num_updates} "
             f"updates, {runs} on {job.mesh.size} {jax.devices()[0].platform} device(s)")
    threading.Thread(target=_import_result_writers, daemon=True).start()
    with quiet_xla_logs() if args.compile_cache else contextlib.nullcontext():
        compile_seconds = job.compile(compile_cache_dir() / "programs" if args.compile_cache else None)
    plan.say(f"compiled in {compile_seconds:.1f} s")
    state = job.init()
    if args.resume is not None:
        restored, done = plan.checkpointer.restore(job.to_host(state))
        state = job.to_devices(restored.replace(done=done))
        plan.say(f"resumed from {args.resume} at update {state.done}/{config.num_updates}")
    return state


def train_loop(plan: RunPlan, state) -> tuple[Any, float]:
    """Trains to the end in chunks, reporting progress, logging and checkpointing between them; returns the final
    state and the seconds spent training."""
    args, config, job = plan.args, plan.config, plan.job
    meta = {"config": config.to_dict(), "seeds": plan.seeds, "sweep": plan.grid, "num_updates": config.num_updates}
    checkpoint_every = args.checkpoint_every or config.num_updates
    log_every = (args.log_every or one_percent(config.num_updates)) if plan.loggers else config.num_updates
    # Progress is reported between chunks of the updates, not by a callback inside the program: JAX's persistent
    # cache does not store programs with host callbacks.
    chunk = config.num_updates if args.quiet else report_interval(None, config.num_updates)
    plan.progress.start_timer(state.done)
    train_seconds = 0.0
    try:
        while state.done < config.num_updates:
            before, start = state.done, time.perf_counter()
            state = job.advance(state, next_stop(before, config.num_updates, chunk, checkpoint_every, log_every)
                                - before)
            jax.block_until_ready(state.metrics)
            train_seconds += time.perf_counter() - start
            if not args.quiet:
                plan.progress(job.latest_metrics(state))  # every process gathers them; process 0 draws
                if jax.process_count() == 1:  # processes must cut the same chunks: only one alone adapts them
                    chunk = report_interval((time.perf_counter() - start) / (state.done - before), config.num_updates)
            if state.done % checkpoint_every == 0 or state.done == config.num_updates:
                plan.checkpointer = plan.checkpointer or open_checkpointer(plan.out)
                plan.checkpointer.save(job.to_host(state), state.done, meta)  # every process takes part
            if plan.loggers:
                so_far = job.result(state, params=False)
                for logger in plan.loggers:
                    logger.log(so_far, before, state.done)
    finally:
        for logger in plan.loggers:
            logger.close()
    plan.progress.close()
    return state, train_seconds


def write_outputs(plan: RunPlan, result, resumed_at: int) -> None:
    """config.json, metrics.csv, learning_curve.png and summary.json, and the closing lines."""
    from purejaxppo.io.report import plot_learning_curves, ranked_table, summary, write_metrics_csv, write_summary

    config, out = plan.config, plan.out
    info = summary(result, config.num_updates - resumed_at, device=str(jax.devices()[0]),
                   num_devices=plan.job.mesh.size, num_processes=jax.process_count(),
                   data_parallel=plan.args.data_parallel, resumed_at_update=resumed_at, jax_version=jax.__version__)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(
        {**config.to_dict(), "seeds": result.seeds.tolist(), "sweep": plan.grid}, indent=2) + "\n")
    write_metrics_csv(out / "metrics.csv", result)
    plot_learning_curves(out / "learning_curve.png", result, f"PPO on {config.env}")
    write_summary(out / "summary.json", info)
    if plan.grid:
        print(ranked_table(result))
    else:
        per_seed = result.final_returns[0]
        spread = f" ± {np.nanstd(per_seed):.1f} (std over seeds)" if len(plan.seeds) > 1 else ""
        print(f"final return {result.summary()[0]['final_return']:.1f}{spread}, mean of the last 5% of updates")
    print(f"train {result.train_seconds:.1f} s, {info['steps_per_second']:,.0f} env steps/s; results in {out}/")


def _fail(error: ValueError) -> int:
    print(f"error: {error}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start_backend(args)
    try:
        plan = plan_run(args)
    except ValueError as e:  # CheckpointError included
        return _fail(e)
    try:
        state = compile_and_restore(plan)
    except Exception as e:
        for logger in plan.loggers:
            logger.close()
        from purejaxppo.io.checkpoint import CheckpointError

        if isinstance(e, CheckpointError):  # a checkpoint that does not fit
            return _fail(e)
        raise
    resumed_at = state.done
    state, train_seconds = train_loop(plan, state)
    result = plan.job.result(state, train_seconds)
    if plan.writer:
        write_outputs(plan, result, resumed_at)
    return 0
