"""Deciding a training run before it compiles: what the command line asks for (a new run, or the run a folder
holds, from its latest checkpoint or from its beginning), checked, and its folder claimed."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Any

import jax

from purejaxppo.cli.args import (
    check_resumed_flags,
    config_from_args,
    logger_flags,
    output_dir,
    parse_sweeps,
    requested_runs,
)
from purejaxppo.cli.progress import Progress
from purejaxppo.cli.run_dir import RunDirLock, check_folder_path, find_run, holds_results, write_config_json
from purejaxppo.cli.startup import defer_renderer_imports
from purejaxppo.io.run_meta import RunRecord
from purejaxppo.scale.compilation import cpu_cores, use_cpu_cores
from purejaxppo.scale.distributed import initialize_distributed
from purejaxppo.scale.plan import check_grid, check_seeds

# The layers that import gymnax (which computes on import) are imported inside the functions that need them,
# after `start_backend`: joining a multi-host program and choosing the CPU devices must come first.


@dataclasses.dataclass
class RunPlan:
    """Everything a run is decided to be before it compiles."""

    args: argparse.Namespace
    record: RunRecord  # config, seeds, sweep grid
    out: Path  # where results go (the resumed run's folder with --resume)
    start_at: int | None  # updates done at the checkpoint it continues from; None: from the beginning
    job: Any = None  # the Sweep
    progress: Any = None
    loggers: list[Any] = dataclasses.field(default_factory=list)
    lock: RunDirLock | None = None  # held by process 0 until it exits
    checkpointer: Any = None  # opened at the first save, or at once to resume

    config = property(lambda self: self.record.config)
    grid = property(lambda self: self.record.sweep)
    seeds = property(lambda self: list(self.record.seeds))

    @property
    def writer(self) -> bool:
        """With several processes, process 0 reports and writes."""
        return jax.process_index() == 0

    def say(self, *args: Any) -> None:
        if self.writer:
            print(*args, flush=True)

    def release(self) -> None:
        """Gives the folder up (a process that ends gives it up anyway)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def start_backend(args: argparse.Namespace) -> None:
    """Joins a multi-host program, or on a CPU makes a device per core the runs can use; then defers the
    renderers' imports, and starts JAX's backend. Before JAX's first computation. ValueError (one line) for
    multi-host flags that cannot work, a program that cannot be joined, or a platform this machine lacks."""
    check_multihost_flags(args)
    if args.distributed or args.coordinator is not None:
        try:
            initialize_distributed(args.coordinator, args.num_processes, args.process_id)
        except Exception as e:  # JAX's own errors: RuntimeError, XlaRuntimeError, ...
            where = args.coordinator or "from the cluster"
            first = str(e).splitlines()[0] if str(e) else ""
            raise ValueError(f"could not join the multi-host program (coordinator {where}): {type(e).__name__}: "
                             f"{first}") from None
    elif not args.data_parallel:  # on a CPU, several runs go to separate cores
        use_cpu_cores(min(cpu_cores(), requested_runs(args)))
    defer_renderer_imports()
    start_platform()


def start_platform() -> None:
    """Starts JAX's backend: ValueError (one line) for a platform this machine lacks (JAX_PLATFORMS=cuda on a
    machine without a GPU, or a name JAX does not know)."""
    try:
        jax.devices()
    except Exception as e:  # RuntimeError, or an AssertionError from a missing plugin
        platforms = jax.config.jax_platforms or "the default"
        why = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}" if str(e) else type(e).__name__
        raise ValueError(f"JAX cannot start platform {platforms} here ({why}): unset JAX_PLATFORMS, or install jax "
                         "for that platform (docs/gpu.md)") from None


def check_multihost_flags(args: argparse.Namespace) -> None:
    """ValueError (one line) for multi-host flags that contradict each other or cannot name a coordinator."""
    coordinator, n, i = args.coordinator, args.num_processes, args.process_id
    if (n is not None or i is not None) and coordinator is None and not args.distributed:
        raise ValueError("--num-processes and --process-id join a multi-host program: give --coordinator HOST:PORT "
                         "too (or --distributed to read them from the cluster)")
    if coordinator is not None:
        host, sep, port = coordinator.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"--coordinator {coordinator!r} is invalid: give HOST:PORT, e.g. 10.0.0.1:1234")
        if n is None or i is None:
            raise ValueError("--coordinator needs --num-processes N and --process-id I (0 to N-1)")
    if n is not None and n < 1:
        raise ValueError(f"--num-processes {n} is invalid: must be at least 1")
    if i is not None and n is not None and not 0 <= i < n:
        raise ValueError(f"--process-id {i} is invalid: must be 0 to {n - 1} (--num-processes {n})")


def open_checkpointer(directory: Path | str, allow_env: str | None = None):
    """A `purejaxppo.io.checkpoint.Checkpointer` on `directory`: orbax is imported when first needed, not at
    start-up (`_import_result_writers` loads it on a thread while the program compiles and trains)."""
    from purejaxppo.io.checkpoint import Checkpointer

    return Checkpointer(directory, allow_env=allow_env)


def _check_counts(args: argparse.Namespace) -> None:
    if args.num_seeds is not None and args.num_seeds < 1:
        raise ValueError(f"--num-seeds {args.num_seeds} is invalid: must be at least 1")
    if args.checkpoint_every < 0:
        raise ValueError(f"--checkpoint-every {args.checkpoint_every} is invalid: must be >= 0 (0: at the end)")
    if args.log_every < 0:
        raise ValueError(f"--log-every {args.log_every} is invalid: must be >= 0 (0: every 1% of the run)")
    if args.resume is not None and args.out is not None and os.path.abspath(args.out) != os.path.abspath(args.resume):
        raise ValueError(f"--resume {args.resume} continues the run in that folder and --out {args.out} names another:"
                         " give one of them (--resume DIR to continue, --out DIR for a new run)")
    if args.auto_resume and (args.out is None or args.resume is not None):
        raise ValueError("--auto-resume needs --out DIR, the folder the run starts in and continues from, and no "
                         "--resume")


def _new_record(args: argparse.Namespace) -> RunRecord:
    """The run the command line asks for."""
    config = config_from_args(args)
    seed, num_seeds = args.seed if args.seed is not None else 0, args.num_seeds or 1
    check_seeds(seed, num_seeds)
    return RunRecord(config, tuple(range(seed, seed + num_seeds)), check_grid(config, parse_sweeps(args.sweep)))


def locate(args: argparse.Namespace, writer: bool) -> RunPlan:
    """The run to train and where it starts: a new one (not yet claimed: `claim` does it once it is checked), or
    (--resume, --auto-resume) the one a folder holds, from its latest checkpoint or from its beginning, the
    folder claimed by process 0 before it is read."""
    folder = args.resume if args.resume is not None else args.out
    if folder is not None:
        check_folder_path(folder, "--resume" if args.resume is not None else "--out")
    if args.resume is None and not (args.auto_resume and holds_results(folder)):
        record = _new_record(args)
        return RunPlan(args, record, output_dir(args.out, record.config.env), None)
    if not folder.is_dir():
        raise ValueError(f"--resume: {folder} does not exist: there is no run to resume")
    lock = RunDirLock(folder) if writer else None
    try:
        checkpointer = open_checkpointer(folder, allow_env=args.env)  # the files' env ids import no code
        found = find_run(folder, checkpointer, allow_env=args.env)
        if lock is not None:  # the writer, holding the folder: saves a killed process left unfinished go
            checkpointer.remove_unfinished()
        if args.auto_resume and found.record != _new_record(args):
            raise ValueError(f"--out {folder} holds another run than this command's (config.json there differs): "
                             "choose another folder, or --resume it as it is")
        check_resumed_flags(args, found.record.config, found.record.seeds, found.record.sweep)
        num_updates = found.record.config.num_updates
        if found.outputs_written and found.done == num_updates and not args.auto_resume:
            raise ValueError(f"--resume: the run in {folder} is complete ({found.done}/{num_updates} updates); to "
                             "train more, start a new run with --out")
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return RunPlan(args, found.record, folder, found.done, lock=lock, checkpointer=checkpointer)


def claim(plan: RunPlan) -> None:
    """A new run's folder, claimed by process 0 (made if need be, its lock taken, config.json written): a second
    run on it, or a folder that cannot be written, is a ValueError before anything compiles."""
    if plan.lock is not None or plan.start_at is not None or not plan.writer:
        return
    if plan.args.resume is not None or plan.args.auto_resume and holds_results(plan.out):
        return
    plan.lock = RunDirLock(plan.out)
    if holds_results(plan.out):  # another run wrote here since output_dir looked
        raise ValueError(f"--out {plan.out} already exists and is not empty; choose another directory")
    try:
        write_config_json(plan.out, plan.record)
    except OSError as e:  # a full disk, say
        raise ValueError(f"cannot write to {plan.out}: {e.strerror or e}; make room, or choose another folder"
                         ) from None


def plan_run(args: argparse.Namespace) -> RunPlan:
    """Validates the arguments, prepares the run and claims its folder; raises ValueError (one line) for bad
    input, before anything compiles (and for a new run, before anything is written)."""
    from purejaxppo.io.loggers import make_loggers
    from purejaxppo.scale.sweep import Sweep

    _check_counts(args)
    writer = jax.process_index() == 0
    plan = locate(args, writer)
    try:
        config, seeds, grid = plan.config, plan.seeds, plan.grid
        if args.data_parallel and (len(seeds) > 1 or grid):
            raise ValueError("--data-parallel trains one run split over the devices: use it without --sweep and "
                             "--num-seeds, or drop it to spread the runs over the devices")
        plan.job = Sweep(config, len(seeds), seeds[0], data_parallel=args.data_parallel, **grid)  # makes the env
        if writer:  # a missing extra fails here; nothing is written until the first log
            plan.loggers = make_loggers(plan.out, config.to_dict(), **logger_flags(args))
        claim(plan)
    except BaseException:
        plan.release()
        raise
    plan.progress = Progress(config.num_updates, config.batch_size, plan.job.num_runs, quiet=args.quiet or not writer)
    return plan
