"""The training command: `python -m purejaxppo.run --env CartPole-v1 [--num-seeds N] [--sweep NAME=V1,V2]
[--<any config field> V]`.

Trains PPO with the env's tuned defaults (`PPOConfig.for_env`): every configuration of the sweep grid with every
seed in one compiled, vmapped program split over all devices (and hosts), or one run split over the devices with
--data-parallel. Writes config.json, metrics.csv, learning_curve.png and summary.json to `--out` (default
runs/<env>-<time>/). Bad input exits with status 2 and one line on stderr, before anything compiles or is written.

`main` parses, starts the backend, plans the run (claiming its folder), compiles and restores, trains in chunks,
then writes the outputs.

SIGTERM, SIGINT and SIGHUP stop the run at the end of its current chunk of updates, with a checkpoint of it, and
a second one stops it at once, even a hung one; a run whose loss or parameters turn non-finite stops at the end
of that chunk, keeping its last finite checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Any, Sequence

import jax
import numpy as np

from purejaxppo.cli.args import build_parser
from purejaxppo.cli.caches import make_files_private, usable_cache_dir, use_compilation_cache
from purejaxppo.cli.plan import RunPlan, open_checkpointer, plan_run, start_backend
from purejaxppo.cli.run_dir import write_config_json
from purejaxppo.cli.startup import quiet_xla_logs, tolerate_closed_stdout
from purejaxppo.cli.stops import Stopped, StopRequests, report_stop
from purejaxppo.io.text import format_return
from purejaxppo.scale.schedule import one_percent


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
    if args.compile_cache:  # the caches hold programs this process runs: the user's own folders alone
        use_compilation_cache(args.cache_dir)
    num_runs = job.num_runs
    runs = f"{num_runs} run{'s' if num_runs > 1 else ''}" + (
        f" ({num_runs // len(plan.seeds)} configs x {len(plan.seeds)} seeds)" if plan.grid else "")
    plan.say(f"PPO on {config.env}: {config.num_envs} envs x {config.num_steps} steps, {config.num_updates} "
             f"updates, {runs} on {job.mesh.size} {jax.devices()[0].platform} device(s)")
    threading.Thread(target=_import_result_writers, daemon=True).start()
    if plan.start_at != config.num_updates:  # a finished run that only lacks its outputs needs no program
        with quiet_xla_logs() if args.compile_cache else contextlib.nullcontext():
            compile_seconds = job.compile(args.cache_dir / "programs" if args.compile_cache else None)
        if args.compile_cache:
            make_files_private(args.cache_dir)
        plan.say(f"compiled in {compile_seconds:.1f} s")
    state = job.init()
    if plan.start_at is not None:
        restored, done = plan.checkpointer.restore(job.to_host(state))
        state = job.to_devices(restored.replace(done=done))
        plan.say(f"resumed from {plan.out} at update {state.done}/{config.num_updates}")
    elif args.resume is not None or args.auto_resume:
        plan.say(f"restarted {plan.out} from its beginning: it was stopped before its first checkpoint")
    return state


def train_loop(plan: RunPlan, state, stops: StopRequests) -> tuple[Any, float, Stopped | None]:
    """Trains to the end in chunks, reporting progress, logging and checkpointing between them, and stops early
    at the end of a chunk when a signal asks or a run diverged; returns the state, the seconds spent training and
    why it stopped early (None: it did not)."""
    args, config, job = plan.args, plan.config, plan.job
    checkpoint_every = args.checkpoint_every or config.num_updates
    log_every = (args.log_every or one_percent(config.num_updates)) if plan.loggers else config.num_updates
    # Progress is reported between chunks of the updates, not by a callback inside the program: JAX's persistent
    # cache does not store programs with host callbacks. Chunks are short even when quiet, so that a signal is
    # answered within about the time a chunk takes.
    plan.progress.start_timer(state.done)
    train_seconds = 0.0
    chunks = job.chunks(state, every=(checkpoint_every, log_every), until=lambda: stops.signal is not None,
                        adapt=jax.process_count() == 1)  # processes must cut the same chunks: only one alone adapts
    for advanced, seconds in chunks:
        train_seconds += seconds
        before = state.done
        diverged = job.first_divergence(advanced, before)
        if diverged is not None:  # keep the last finite state: its checkpoint is the last one saved
            return advanced, train_seconds, Stopped(diverged=diverged)
        state = advanced
        if not args.quiet:
            plan.progress.show(state.done, job.recent_returns(state))  # every process gathers them; process 0 draws
        if stops.signal is not None or state.done % checkpoint_every == 0 or state.done == config.num_updates:
            save_checkpoint(plan, state)
        if plan.loggers:
            so_far = job.result(state, params=False)
            for logger in plan.loggers:
                logger.log(so_far, before, state.done)
    return state, train_seconds, Stopped(signal=stops.signal) if state.done < config.num_updates else None


def save_checkpoint(plan: RunPlan, state) -> None:
    """A checkpoint of `state` (every process takes part; process 0 writes)."""
    plan.checkpointer = plan.checkpointer or open_checkpointer(plan.out, allow_env=plan.config.env)  # its own
    plan.checkpointer.save(plan.job.to_host(state), state.done, plan.record.checkpoint_meta())


def write_outputs(plan: RunPlan, result, resumed_at: int, diverged: tuple[int, int] | None = None) -> None:
    """config.json, metrics.csv, learning_curve.png and summary.json, and the closing lines."""
    from purejaxppo.io.report import configs_table, plot_learning_curves, summary, write_metrics_csv, write_summary

    config, out = plan.config, plan.out
    extra = {"diverged_at_update": diverged[0]} if diverged else {}
    trained = result.metrics["env_steps"].shape[-1] - resumed_at
    info = summary(result, trained, device=str(jax.devices()[0]), num_devices=plan.job.mesh.size,
                   num_processes=jax.process_count(), data_parallel=plan.args.data_parallel,
                   resumed_at_update=resumed_at, jax_version=jax.__version__, **extra)
    write_config_json(out, plan.record)
    write_metrics_csv(out / "metrics.csv", result)
    plot_learning_curves(out / "learning_curve.png", result, f"PPO on {config.env}")
    write_summary(out / "summary.json", info)  # last: a run with its summary has all its outputs
    if plan.grid:
        print(configs_table(result))
    else:
        per_seed = result.final_returns[0]
        final = result.summary()[0]["final_return"]
        spread = f" ± {format_return(np.nanstd(per_seed), final)} (std over seeds)" if len(plan.seeds) > 1 else ""
        print(f"final return {format_return(final)}{spread}, mean of the last 5% of updates")
    rate = f"{info['steps_per_second']:,.0f} env steps/s" if info["steps_per_second"] else "nothing left to train"
    print(f"train {result.train_seconds:.1f} s, {rate}; results in {out}/")


def _fail(error: ValueError) -> int:
    print(f"error: {error}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    tolerate_closed_stdout()
    try:
        start_backend(args)
        args.cache_dir = usable_cache_dir() if args.compile_cache else None  # checked before the folder is claimed
        args.compile_cache = args.cache_dir is not None
        plan = plan_run(args)
    except ValueError as e:  # CheckpointError included
        return _fail(e)
    except KeyboardInterrupt:  # Ctrl-C while starting: a new run's folder is claimed last, by plan_run
        print("interrupted while starting, before anything was trained: run the command again to start",
              file=sys.stderr)
        return 130
    try:
        return run(plan)
    finally:
        plan.release()


def run(plan: RunPlan) -> int:
    """Trains the planned run to its end (or until it is stopped), writes its results; the exit status."""
    if plan.start_at == plan.config.num_updates and plan.args.auto_resume and (plan.out / "summary.json").is_file():
        plan.say(f"the run in {plan.out} is complete ({plan.start_at}/{plan.config.num_updates} updates): "
                 "nothing to do")
        return 0
    with StopRequests(f"any checkpoint saved before is kept; continue with: python -m purejaxppo.run --resume "
                      f"{plan.out}", quiet=plan.args.quiet) as stops:
        try:
            state = compile_and_restore(plan)
            resumed_at = state.done
            state, train_seconds, stopped = train_loop(plan, state, stops)
        except Exception as e:
            from purejaxppo.io.checkpoint import CheckpointError, CheckpointSaveError

            if isinstance(e, CheckpointError):  # a checkpoint that does not fit
                return _fail(e)
            if isinstance(e, CheckpointSaveError):  # a full disk, say
                last = plan.checkpointer.latest()
                kept = f"the last complete checkpoint, update {last}, is kept" if last else "no checkpoint was kept"
                print(f"error: {e}; {kept}: make room, then continue with: python -m purejaxppo.run --resume "
                      f"{plan.out}", file=sys.stderr, flush=True)
                os._exit(1)  # at once: the failed write's threads would print tracebacks while Python shuts down
            raise
        finally:
            for logger in plan.loggers:
                logger.close()
            plan.progress.close()
    if stopped is not None and stopped.signal is not None:
        return report_stop(plan.config, plan.out, state.done, plan.checkpointer, stopped)
    result = plan.job.result(state, train_seconds)
    if plan.writer:
        try:
            write_outputs(plan, result, resumed_at, stopped.diverged if stopped else None)
        except OSError as e:  # a full disk, say: the last checkpoint holds everything the outputs are made from
            print(f"error: could not write the results to {plan.out} ({e.strerror or e}); the training is kept in "
                  f"its last checkpoint: make room, then write them with: python -m purejaxppo.run --resume "
                  f"{plan.out}", file=sys.stderr, flush=True)
            return 1
    return report_stop(plan.config, plan.out, state.done, plan.checkpointer, stopped) if stopped else 0
