"""The tuning command:

    python -m purejaxppo.tune --env Acrobot-v1 --trials 64 --num-seeds 4 --param lr=log:1e-4:1e-2 \\
        --param num_envs=8,16,32

Searches hyperparameters around the env's defaults (and any config flag or `--config` file given) by successive
halving (`purejaxppo.scale.tune`), trains the best few again on fresh seeds, and writes to `--out` (default
runs/tune-<env>-<time>/): trials.csv, ranked.md, best.json (`python -m purejaxppo.run --config best.json` trains
the winner), scores.png and tune.json. It saves where it stands after every rung: `--resume DIR` continues a
tuner that was stopped or killed. Bad input is one line, exit status 2, before anything compiles.

This module parses and writes: the search is `purejaxppo.scale.tune.Tuner`, the one the Python API `tune` runs,
given the folder's hooks (`purejaxppo.io.tune_state`) and writing its outputs with `purejaxppo.io.tune_report`.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from purejaxppo.cli.args import OneLineParser, add_config_flags, config_from_args
from purejaxppo.cli.caches import make_files_private, usable_cache_dir, use_compilation_cache
from purejaxppo.cli.plan import start_platform
from purejaxppo.cli.run_dir import RunDirLock, holds_results
from purejaxppo.cli.startup import defer_renderer_imports, quiet_xla_logs, tolerate_closed_stdout
from purejaxppo.cli.stops import StopRequests
from purejaxppo.cli.tune_flags import SEARCH_DEFAULTS, check_resumed_flags, check_search_flags
from purejaxppo.io.run_meta import check_env_from_file
from purejaxppo.scale.compilation import cpu_cores, use_cpu_cores


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m purejaxppo.tune",
                           description="Tune PPO's hyperparameters on an env by successive halving.")
    parser.add_argument("--env", help="env id (default CartPole-v1)")
    parser.add_argument("--config", type=Path, metavar="FILE", help="a JSON file of config fields to tune around")
    parser.add_argument("--trials", type=int, help="trials of the search (default 64)")
    parser.add_argument("--num-seeds", type=int, help="seeds per trial in the search (default 4)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=SPACE",
                        help="search NAME over SPACE: log:LOW:HIGH, lin:LOW:HIGH or V1,V2,... (repeatable; "
                             "replaces that field's default space; structural fields make groups)")
    parser.add_argument("--only", action="store_true", default=None,
                        help="search only the --param fields, not the default numeric space as well")
    parser.add_argument("--rungs", type=int, help="successive-halving rungs (default 3)")
    parser.add_argument("--eta", type=int, help="keep the best 1/eta at each rung (default 3)")
    parser.add_argument("--confirm", type=int, help="best trials trained again on fresh seeds (3)")
    parser.add_argument("--confirm-seeds", type=int, help="fresh seeds of that confirmation (8)")
    parser.add_argument("--search-fraction", type=float, metavar="F",
                        help="multi-fidelity: the search trains each trial on F of the budget (its learning-rate "
                             "schedule over that), the confirmation on all of it (default 1)")
    parser.add_argument("--seed", type=int,
                        help="first search seed (default 1000: seeds 0-999, where results are reported, unused)")
    parser.add_argument("--out", type=Path, help="output folder (default runs/tune-<env>-<time>/)")
    parser.add_argument("--resume", type=Path, metavar="DIR", help="continue the tuner in DIR where it stopped")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument("--no-compile-cache", dest="compile_cache", action="store_false",
                        help="do not use the compile caches")
    add_config_flags(parser)
    return parser


def spec_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Everything that decides the search, JSON-ready: what tune_state.json records and a resume reads."""
    from purejaxppo.scale.search import parse_param

    config = config_from_args(args)
    parsed = [parse_param(p) for p in args.param]
    names = [name for name, _ in parsed]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"--param {twice[0]} is given more than once: give each field one --param")
    given = dict(parsed)
    spec = {"config": config.to_dict(), "params": [str(p) for p in args.param], "only": bool(args.only),
            **{key: default if getattr(args, key) is None else getattr(args, key)
               for key, default in SEARCH_DEFAULTS.items()}}
    if args.only and not given:
        raise ValueError("--only searches the --param fields alone: give at least one --param")
    return spec


def space_of(spec: dict[str, Any]):
    from purejaxppo.scale.search import DEFAULT_SPACE, parse_param

    given = dict(parse_param(p) for p in spec["params"])
    return given if spec["only"] else {**DEFAULT_SPACE, **given}


class Interrupted(KeyboardInterrupt):
    """The stop a signal (its number the one argument) asked for, raised after a chunk of updates or a save: the
    tuner keeps whole rungs alone, so the part of a rung under way is dropped, as Ctrl-C's KeyboardInterrupt
    always dropped it."""


class Report:
    """The progress of training, a line at most every 5 seconds and at the end of each rung (nothing when quiet);
    after each chunk, a stop a signal asked for (`stops`) as Interrupted."""

    def __init__(self, quiet: bool, stops: StopRequests | None = None):
        self.quiet, self.last_line, self.stops = quiet, 0.0, stops

    def __call__(self, label: str, done: int, stop: int) -> None:
        if not self.quiet and (time.monotonic() - self.last_line > 5 or done == stop):
            self.last_line = time.monotonic()
            print(f"{label}: update {done}/{stop}", flush=True)
        self.check()

    def check(self) -> None:
        if self.stops is not None and self.stops.signal is not None:
            raise Interrupted(self.stops.signal)


def open_tuner(out: Path, spec: dict[str, Any], quiet: bool, program_cache: Path | None,
               stops: StopRequests | None = None):
    """The tuner `spec` describes, from where its folder's state says it stands, saving there as it goes and
    stopping where `stops` received a signal."""
    from purejaxppo.core.config import PPOConfig
    from purejaxppo.io.tune_state import TunerFolder
    from purejaxppo.scale.tune import SearchPlan, Tuner

    plan = SearchPlan(PPOConfig(**spec["config"]), space_of(spec), spec["trials"], spec["num_seeds"], spec["rungs"],
                      spec["eta"], spec["confirm"], spec["confirm_seeds"], spec["seed"],
                      spec.get("search_fraction", 1.0))  # absent from the specs of tuners before it
    folder = TunerFolder(out, spec, allow_env=plan.config.env)  # checked: _locate
    report = Report(quiet, stops)

    def save_then_check(state: dict[str, Any]) -> None:  # a stop asked during a rung: before the next compiles
        folder.save(state)
        report.check()

    tuner = Tuner(plan, folder.read_state(), on_chunk=report, on_save=save_then_check, checkpoints=folder,
                  program_cache=program_cache)
    return folder, tuner


def search_budget(tuner) -> str:
    """`, each trial on 1,000,000 of 10,000,000 env steps` where the search is multi-fidelity, else ``."""
    short, whole = tuner.search_config.total_timesteps, tuner.plan.config.total_timesteps
    return "" if short == whole else f", each trial on {short:,} of {whole:,} env steps"


def _locate(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """The folder and spec: a new tuner's (its folder must be empty), or the one `--resume` continues."""
    if args.resume is not None:
        from purejaxppo.io.tune_state import resumed_spec

        spec = resumed_spec(args.resume)
        check_env_from_file(spec["config"].get("env"), f"--resume: {args.resume}/tune_state.json", args.env)
        check_resumed_flags(args, spec)
        return args.resume, spec
    spec = spec_from_args(args)
    env = spec["config"]["env"].replace(":", "-")
    out = args.out or Path("runs") / f"tune-{env}-{time.strftime('%Y%m%d-%H%M%S')}"
    if holds_results(out):
        raise ValueError(f"--out {out} already exists and is not empty; choose another directory")
    return out, spec


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    use_cpu_cores(cpu_cores())
    defer_renderer_imports()
    tolerate_closed_stdout()
    # run's handlers rather than Python's KeyboardInterrupt: a shell starts a background job with SIGINT ignored,
    # which Python keeps, so a tuner started with `&` never stopped on SIGINT (nor saved anything on SIGTERM)
    stops = StopRequests(quiet=args.quiet)
    try:
        out, spec, tuner, cache, lock = _start(args, stops)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted while starting, before anything was trained", file=sys.stderr)
        return 130
    stops.on_second = f"nothing saved since the last rung; continue with: python -m purejaxppo.tune --resume {out}"
    try:
        with stops:
            return _tune(out, spec, tuner, cache)
    finally:
        lock.release()


def _start(args: argparse.Namespace, stops: StopRequests):
    """The folder, spec and tuner the arguments ask for, checked before anything compiles; the folder claimed
    (its lock) and its state saved. ValueError (one line) for bad input."""
    start_platform()
    check_search_flags(args)
    out, spec = _locate(args)
    cache = usable_cache_dir() if args.compile_cache else None  # checked before the folder is claimed
    lock = RunDirLock(out)
    try:
        folder, tuner = open_tuner(out, spec, args.quiet, cache / "programs" if cache else None, stops)
        tuner.check()  # the env was made, the batches fit: before anything compiles
        try:
            folder.save(tuner.state)
        except OSError as e:
            raise ValueError(f"cannot write to {out}: {e.strerror or e}; make room, or choose another folder") from None
    except BaseException:
        lock.release()
        raise
    return out, spec, tuner, cache, lock


def _tune(out: Path, spec: dict[str, Any], tuner, cache: Path | None) -> int:
    """Runs `tuner` to its end and writes its outputs in `out`, or stops; the exit status."""
    resume = f"continue with: python -m purejaxppo.tune --resume {out}"
    try:
        if cache:
            use_compilation_cache(cache)
        print(f"tuning {tuner.plan.config.env}: {len(tuner.trials)} trials in {len(tuner.groups)} structural group(s)"
              f" x {spec['num_seeds']} seeds, rungs at updates {tuner.rung_stops}"
              f"{search_budget(tuner)}", flush=True)
        with quiet_xla_logs() if cache else contextlib.nullcontext():
            result = tuner.run()
        if cache:
            make_files_private(cache)
        from purejaxppo.io.tune_report import write_outputs

        print(write_outputs(out, tuner, result, spec), end="")
        print(f"{result.compiles} programs compiled, {result.train_seconds:.0f} s; best.json and the tables in {out}/")
        return 0
    except KeyboardInterrupt as e:  # Interrupted: a signal, at the end of a chunk; else Ctrl-C with Python's handler
        print(f"interrupted: every rung the tuner finished is saved in {out}; {resume}", file=sys.stderr)
        return 128 + (e.args[0] if isinstance(e, Interrupted) else signal.SIGINT)
    except ValueError as e:  # a checkpoint that does not fit (CheckpointError), a group that cannot fit in memory
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, say; CheckpointSaveError included
        print(f"error: could not write to {out} ({e.strerror or e}); the rungs saved before are kept: make room, "
              f"then {resume}", file=sys.stderr)
        return 1
