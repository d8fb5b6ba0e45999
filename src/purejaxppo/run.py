"""The command line: `python -m purejaxppo.run --env CartPole-v1 [--num-seeds N] [--sweep NAME=V1,V2]
[--<any config field> V]`.

Trains PPO with the env's tuned defaults (`PPOConfig.for_env`): every configuration of the sweep grid with every
seed in one compiled, vmapped program split over all devices (and hosts), or one run split over the devices with
--data-parallel. Writes config.json, metrics.csv, learning_curve.png and summary.json to `--out` (default
runs/<env>-<time>/). Bad input exits with status 2 and one line on stderr, before anything compiles or is written.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import jax
import numpy as np

from purejaxppo.compilation import cpu_cores, use_cpu_cores
from purejaxppo.config import PPOConfig, field_docs
from purejaxppo.distributed import initialize_distributed
from purejaxppo.progress import Progress, report_interval

# purejaxppo.parallel, .report and .sweep import gymnax, which computes on import: main() imports them after
# joining a multi-host program, which must come first.


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m purejaxppo.run", description="Train PPO on a gymnax environment.")
    parser.add_argument("--env", help="gymnax env id, or brax:<name> with the brax extra (default CartPole-v1)")
    parser.add_argument("--seed", type=int, help="seed of the first run; run i uses seed + i (default 0)")
    parser.add_argument("--num-seeds", type=int, help="seeds trained at once in one vmapped program (default 1)")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default runs/<env>-<time>/)")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument("--checkpoint-every", type=int, default=0, metavar="N",
                        help="save a checkpoint every N updates (default 0: only at the end)")
    parser.add_argument("--resume", type=Path, metavar="DIR",
                        help="continue the run in DIR from its latest checkpoint; its results go to DIR")
    parser.add_argument("--tensorboard", action="store_true",
                        help="also log every metric of every run as TensorBoard events, in <out>/tensorboard")
    parser.add_argument("--wandb", action="store_true",
                        help="also log to Weights & Biases, one W&B run per configuration and seed, files in "
                             "<out>/wandb (WANDB_MODE=offline works without a network)")
    parser.add_argument("--wandb-project", default="purejaxppo", help="W&B project (default purejaxppo)")
    parser.add_argument("--log-every", type=int, default=0, metavar="N",
                        help="with --tensorboard or --wandb: log every N updates (default: every 1%% of the run)")
    parser.add_argument("--no-compile-cache", dest="compile_cache", action="store_false",
                        help="do not use JAX's persistent compilation cache nor the cache of traced programs "
                             "(default: on, in ~/.cache/purejaxppo/jax)")
    parser.add_argument("--sweep", action="append", default=[], metavar="NAME=V1,V2,...",
                        help="sweep a numeric hyperparameter (repeatable: the product grid is trained, every "
                             "configuration with every seed, in one compiled program)")
    parallel = parser.add_argument_group("devices and hosts")
    parallel.add_argument("--data-parallel", action="store_true",
                          help="split one run's envs over the local devices (num_envs must divide evenly)")
    parallel.add_argument("--coordinator", metavar="HOST:PORT",
                          help="multi-host: address of process 0's coordinator service")
    parallel.add_argument("--num-processes", type=int, help="multi-host: number of processes")
    parallel.add_argument("--process-id", type=int, help="multi-host: this process's index, 0 to N-1")
    parallel.add_argument("--distributed", action="store_true",
                          help="multi-host, with the coordinator and process ids read from the cluster's "
                               "environment (SLURM, Open MPI, Kubernetes)")
    config_args = parser.add_argument_group("PPO hyperparameters (default: the env's tuned value)")
    docs = field_docs()
    for f in dataclasses.fields(PPOConfig):
        if f.name == "env":
            continue
        kwargs: dict[str, Any] = dict(default=None, help=docs.get(f.name, ""), dest=f.name)
        if f.type in ("bool", bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif f.name == "hidden_sizes":
            kwargs.update(type=int, nargs="+", metavar="WIDTH")
        else:
            kwargs["type"] = {"int": int, "float": float, "float | None": float, "str": str}[str(f.type)]
        config_args.add_argument("--" + f.name.replace("_", "-"), **kwargs)
    return parser


def config_from_args(args: argparse.Namespace) -> PPOConfig:
    """The env's defaults with every flag the user gave on top; raises ValueError for bad values."""
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(PPOConfig)
                 if f.name != "env" and getattr(args, f.name) is not None}
    return PPOConfig.for_env(args.env or "CartPole-v1", **overrides)


def parse_sweeps(specs: Sequence[str]) -> dict[str, list[float]]:
    """`["lr=1e-4,3e-4", "ent_coef=0,0.01"]` -> `{"lr": [1e-4, 3e-4], "ent_coef": [0.0, 0.01]}`."""
    grid = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().replace("-", "_")
        try:
            if not sep or not name:
                raise ValueError
            grid[name] = [float(v) for v in values.split(",")]
        except ValueError:
            raise ValueError(f"--sweep {spec!r} is invalid: write NAME=V1,V2,... e.g. --sweep lr=1e-4,3e-4") from None
    return grid


def output_dir(out: Path | None, env: str) -> Path:
    """Where results go; refuses a directory that already holds files, so nothing saved is overwritten."""
    # brax:ant -> runs/brax-ant-<time>: Windows forbids ":" in a path, and scp reads it as a host separator.
    out = out or Path("runs") / f"{env.replace(':', '-')}-{time.strftime('%Y%m%d-%H%M%S')}"
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"--out {out} already exists and is not empty; choose another directory")
    return out


def compile_cache_dir() -> Path:
    """Where the CLI keeps JAX's persistent compilation cache, and in its `programs/` the traced programs
    (`purejaxppo.program_cache`): $PUREJAXPPO_CACHE, else the user cache folder."""
    if os.environ.get("PUREJAXPPO_CACHE"):
        return Path(os.environ["PUREJAXPPO_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "purejaxppo" / "jax"


@contextlib.contextmanager
def quiet_xla_logs():
    """Silences XLA's C++ log while loading from the compilation cache: on every cache hit it prints a benign
    ERROR that the cached code's tuning flags (+prefer-no-gather...) are not host CPU features."""
    try:
        from jax._src.lib import utils  # private; if it moves, the log just stays as it is
        utils.absl_set_min_log_level(3)
    except (ImportError, AttributeError):
        yield
        return
    try:
        yield
    finally:
        utils.absl_set_min_log_level(0)


def resumed_config(args: argparse.Namespace, meta: dict[str, Any]) -> PPOConfig:
    """The checkpointed run's config; a flag that contradicts the checkpoint is a ValueError naming it."""
    saved = PPOConfig(**meta["config"])
    for f in dataclasses.fields(PPOConfig):
        given = getattr(args, f.name)
        if given is not None and PPOConfig(**{**meta["config"], f.name: given}) != saved:
            raise ValueError(f"--resume: the checkpoint is of a run with {f.name}={getattr(saved, f.name)!r}, "
                             f"not {given!r}; a resumed run keeps its config (drop the flag)")
    for flag, given, kept in (("--num-seeds", args.num_seeds, len(meta["seeds"])),
                              ("--seed", args.seed, meta["seeds"][0]),
                              ("--sweep", parse_sweeps(args.sweep) or None, meta["sweep"])):
        if given is not None and given != kept:
            raise ValueError(f"--resume: the checkpoint is of a run with {flag} {kept}, not {given}")
    return saved


def requested_runs(args: argparse.Namespace) -> int:
    """How many runs the arguments ask for, read before anything is validated (bad values count as one run, and
    fail validation later); a resumed run's are in its checkpoint, so as many as there are CPU cores."""
    if args.resume is not None:
        return cpu_cores()
    try:
        grid = parse_sweeps(args.sweep)
    except ValueError:
        grid = {}
    return count_runs(max(args.num_seeds or 1, 1), grid)


def count_runs(num_seeds: int, grid: dict[str, Any]) -> int:
    """Runs of a sweep: every configuration of the product grid with every seed."""
    return num_seeds * int(np.prod([len(v) for v in grid.values()]))


def _import_result_writers() -> None:
    """Imports what saving the results needs and the training does not (orbax ~1 s, matplotlib ~0.3 s), on a
    thread started as compilation begins: XLA compiles and trains without holding the GIL, so the imports overlap
    with them rather than adding to the command's wall time."""
    import matplotlib.figure  # noqa: F401

    import purejaxppo.checkpoint  # noqa: F401


def open_checkpointer(directory: Path | str):
    """A `purejaxppo.checkpoint.Checkpointer` on `directory`: orbax is imported when first needed, not at start-up
    (`_import_result_writers` loads it on a thread while the program compiles and trains)."""
    from purejaxppo.checkpoint import Checkpointer

    return Checkpointer(directory)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.distributed or args.coordinator is not None:
        initialize_distributed(args.coordinator, args.num_processes, args.process_id)
    elif not args.data_parallel:  # on a CPU, several runs go to separate cores
        use_cpu_cores(min(cpu_cores(), requested_runs(args)))
    from purejaxppo.loggers import make_loggers
    from purejaxppo.report import plot_learning_curves, ranked_table, summary, write_metrics_csv, write_summary
    from purejaxppo.sweeps import Sweep, check_grid

    try:
        if args.num_seeds is not None and args.num_seeds < 1:
            raise ValueError(f"--num-seeds {args.num_seeds} is invalid: must be at least 1")
        if args.checkpoint_every < 0:
            raise ValueError(f"--checkpoint-every {args.checkpoint_every} is invalid: must be >= 0 (0: at the end)")
        if args.log_every < 0:
            raise ValueError(f"--log-every {args.log_every} is invalid: must be >= 0 (0: every 1% of the run)")
        if args.resume is not None:
            checkpointer = open_checkpointer(args.resume)
            meta = checkpointer.meta()
            config = resumed_config(args, meta)
            if meta["done"] >= config.num_updates:
                raise ValueError(f"--resume: the run in {args.resume} is complete ({meta['done']}/"
                                 f"{config.num_updates} updates); to train more, start a new run with --out")
            grid, seeds, out = meta["sweep"], meta["seeds"], args.resume
            num_seeds, seed = len(seeds), seeds[0]
        else:
            config = config_from_args(args)
            grid, num_seeds, seed = parse_sweeps(args.sweep), args.num_seeds or 1, args.seed or 0
            out = output_dir(args.out, config.env)
            checkpointer = None  # made at the first save, once a thread has imported orbax
        grid = check_grid(config, grid)
        if args.data_parallel and (num_seeds > 1 or grid):
            raise ValueError("--data-parallel trains one run split over the devices: use it without --sweep and "
                             "--num-seeds, or drop it to spread the runs over the devices")
        writer = jax.process_index() == 0  # with several processes, process 0 reports and writes
        num_runs = count_runs(num_seeds, grid)
        quiet = args.quiet or not writer
        progress = Progress(config.num_updates, config.batch_size, num_runs, quiet=quiet)
        job = Sweep(config, num_seeds, seed, data_parallel=args.data_parallel, **grid)
        loggers = make_loggers(out, args.tensorboard, args.wandb, args.wandb_project,
                               config.to_dict()) if writer else []
    except ValueError as e:  # CheckpointError included
        print(f"error: {e}", file=sys.stderr)
        return 2

    if args.compile_cache:
        jax.config.update("jax_compilation_cache_dir", str(compile_cache_dir()))
    say = print if writer else (lambda *a, **k: None)
    runs = f"{num_runs} run{'s' if num_runs > 1 else ''}" + (
        f" ({num_runs // num_seeds} configs x {num_seeds} seeds)" if grid else "")
    say(f"PPO on {config.env}: {config.num_envs} envs x {config.num_steps} steps, {config.num_updates} updates, "
        f"{runs} on {job.mesh.size} {jax.devices()[0].platform} device(s)", flush=True)
    threading.Thread(target=_import_result_writers, daemon=True).start()
    with quiet_xla_logs() if args.compile_cache else contextlib.nullcontext():
        compile_seconds = job.compile(compile_cache_dir() / "programs" if args.compile_cache else None)
    say(f"compiled in {compile_seconds:.1f} s", flush=True)

    state = job.init()
    if args.resume is not None:
        try:
            state = job.to_devices(checkpointer.restore(job.to_host(state)))
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        say(f"resumed from {args.resume} at update {state.done}/{config.num_updates}", flush=True)
    meta = {"config": config.to_dict(), "seeds": list(range(seed, seed + num_seeds)), "sweep": grid,
            "num_updates": config.num_updates, "format": 1}
    checkpoint_every = args.checkpoint_every or config.num_updates
    log_every = (args.log_every or -(-config.num_updates // 100)) if loggers else config.num_updates
    # Progress is reported between chunks of the updates, not by a callback inside the program: JAX's persistent
    # cache does not store programs with host callbacks. The first chunk is 1% of the run; later ones last ~0.5 s.
    report_every = config.num_updates if args.quiet else report_interval(None, config.num_updates)
    resumed_at = state.done
    progress.start_timer(resumed_at)
    train_seconds = 0.0
    try:
        while state.done < config.num_updates:
            before, start = state.done, time.perf_counter()
            stop = min([before + report_every, config.num_updates]
                       + [-(-(before + 1) // every) * every for every in (checkpoint_every, log_every)])
            state = job.advance(state, stop - before)
            jax.block_until_ready(state.metrics)
            train_seconds += time.perf_counter() - start
            if not args.quiet:
                progress(job.latest_metrics(state))  # every process gathers them; process 0 draws
                if jax.process_count() == 1:  # processes must cut the same chunks: only one alone adapts them
                    report_every = report_interval((time.perf_counter() - start) / (state.done - before),
                                                   config.num_updates)
            if state.done % checkpoint_every == 0 or state.done == config.num_updates:
                if checkpointer is None:
                    checkpointer = open_checkpointer(out)
                checkpointer.save(job.to_host(state), meta)  # every process takes part; orbax writes from 0
            if loggers:
                so_far = job.result(state, params=False)
                for logger in loggers:
                    logger.log(so_far, before, state.done)
    finally:
        for logger in loggers:
            logger.close()
    progress.close()
    result = job.result(state, train_seconds)
    if not writer:
        return 0

    info = summary(result, config.num_updates - resumed_at, device=str(jax.devices()[0]),
                   num_devices=job.mesh.size, num_processes=jax.process_count(),
                   data_parallel=args.data_parallel, resumed_at_update=resumed_at, jax_version=jax.__version__)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(
        {**config.to_dict(), "seeds": result.seeds.tolist(), "sweep": grid}, indent=2) + "\n")
    write_metrics_csv(out / "metrics.csv", result)
    plot_learning_curves(out / "learning_curve.png", result, f"PPO on {config.env}")
    write_summary(out / "summary.json", info)

    if grid:
        print(ranked_table(result))
    else:
        per_seed = result.final_returns[0]
        spread = f" ± {np.nanstd(per_seed):.1f} (std over seeds)" if num_seeds > 1 else ""
        print(f"final return {result.summary()[0]['final_return']:.1f}{spread}, mean of the last 5% of updates")
    print(f"train {result.train_seconds:.1f} s, {info['steps_per_second']:,.0f} env steps/s; results in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
