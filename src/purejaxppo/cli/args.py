"""The training command's arguments: the parser (every `PPOConfig` field is a flag), and what they ask for."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Sequence

from purejaxppo.cli.field_help import field_docs
from purejaxppo.cli.run_dir import holds_results
from purejaxppo.core.config import NUMERIC_FIELDS, PPOConfig
from purejaxppo.core.env_ids import named_prefixes
from purejaxppo.io import loggers
from purejaxppo.io.run_meta import check_env_from_file
from purejaxppo.scale.compilation import cpu_cores
from purejaxppo.scale.files import UnsafeFile, describe, read_json
from purejaxppo.scale.plan import count_runs, repeated_value


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr, exit status 2, as every other bad input."""

    def error(self, message: str):
        self.exit(2, f"error: {message} ({self.prog} --help lists the flags)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m purejaxppo.run", description="Train PPO on a gymnax environment.")
    parser.add_argument("--env", help=f"gymnax env id; {', '.join(named_prefixes())} and the suite's own env name, "
                        "with that extra (docs/suites.md); or package.module:factory, a function returning your own "
                        "env (default CartPole-v1)")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="a JSON file of config fields (e.g. a tuner's best.json), on top of the env's defaults; "
                             "flags given beside it override it")
    parser.add_argument("--seed", type=int, help="seed of the first run; run i uses seed + i (default 0)")
    parser.add_argument("--num-seeds", type=int, help="seeds trained at once in one vmapped program (default 1)")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default runs/<env>-<time>/)")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument("--checkpoint-every", type=int, default=0, metavar="N",
                        help="save a checkpoint every N updates (default 0: only at the end)")
    parser.add_argument("--resume", type=Path, metavar="DIR",
                        help="continue the run in DIR from its latest checkpoint (from its start if it has none; "
                             "only its missing results if it finished); its results go to DIR")
    parser.add_argument("--auto-resume", action="store_true",
                        help="with --out DIR: start the run in DIR, or continue it there if this same command "
                             "started it before (one command line for a job a cluster may stop and requeue)")
    add_logger_flags(parser)
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
    add_config_flags(parser)
    return parser


def add_logger_flags(parser: argparse.ArgumentParser) -> None:
    """A flag for every logger of `purejaxppo.io.loggers.LOGGERS` (`--tensorboard`), its options after it
    (`--wandb-project`), and `--log-every`, which names them all."""
    for entry in loggers.LOGGERS:
        parser.add_argument(_flag(entry.name), action="store_true", help=entry.help)
        for name, (default, text) in entry.options.items():
            parser.add_argument(_flag(name), default=default, help=text)
    every = " or ".join(_flag(entry.name) for entry in loggers.LOGGERS)
    parser.add_argument("--log-every", type=int, default=0, metavar="N",
                        help=f"with {every}: log every N updates (default: every 1%% of the run)")


def logger_flags(args: argparse.Namespace) -> dict[str, Any]:
    """What the logger flags parsed to, as `purejaxppo.io.loggers.make_loggers` takes it."""
    return {name: getattr(args, name) for entry in loggers.LOGGERS for name in (entry.name, *entry.options)}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """A flag for every config field but the env (`--num-envs 8`, `--no-anneal-lr`, ...), each defaulting to
    None: the env's tuned value."""
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
        elif f.name == "env_kwargs":
            kwargs.update(type=env_kwarg, nargs="+", metavar="NAME=VALUE")
        else:
            kwargs["type"] = {"int": int, "float": float, "float | None": float, "str": str}[str(f.type)]
        config_args.add_argument("--" + f.name.replace("_", "-"), **kwargs)


def env_kwarg(text: str) -> tuple[str, Any]:
    """`name=value` as (name, value): value a JSON number or boolean (also True/False) if it reads as one, else
    the string."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE, e.g. max_steps_in_episode=100")
    literal = {"True": "true", "False": "false"}.get(value, value)
    try:
        parsed = json.loads(literal)
    except ValueError:
        parsed = value
    return name.strip(), parsed if isinstance(parsed, (bool, int, float)) else value


def config_from_args(args: argparse.Namespace) -> PPOConfig:
    """The env's defaults with every flag the user gave on top; raises ValueError for bad values, and for a
    hyperparameter given both as a flag and in --sweep."""
    if args.env is not None and not args.env.strip():
        raise ValueError("--env '' is invalid: name an env, e.g. --env CartPole-v1")
    flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(PPOConfig)
             if f.name != "env" and getattr(args, f.name) is not None}
    for name in parse_sweeps(getattr(args, "sweep", [])):
        if name in flags:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"{flag} {flags[name]} and --sweep {name}=... both set {name}: give one of them")
    from_file = read_config_file(args.config) if getattr(args, "config", None) is not None else {}
    if args.env is None:  # the file's env is the one used
        check_env_from_file(from_file.get("env"), f"--config {args.config}", None)
    env = args.env if args.env is not None else from_file.pop("env", "CartPole-v1")
    from_file.pop("env", None)
    return PPOConfig.for_env(env, **{**from_file, **flags})


def read_config_file(path: Path) -> dict[str, Any]:
    """The config fields a JSON file holds; ValueError (one line) when it is unreadable, not an object, or holds
    a key that is not a config field, or a value of the wrong kind."""
    try:
        fields = read_json(path, follow=True)  # a path the user named: a link there is theirs
    except (OSError, ValueError) as e:
        why = str(e) if isinstance(e, UnsafeFile) else f"{type(e).__name__}: {e}"
        raise ValueError(f"--config {path} is unreadable ({why}); give a JSON file of config fields, e.g. a "
                         "tuner's best.json") from None
    if not isinstance(fields, dict):
        raise ValueError(f"--config {path} holds a {type(fields).__name__}, not a JSON object of config fields")
    known = {f.name for f in dataclasses.fields(PPOConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"--config {path} holds unknown fields {', '.join(map(repr, unknown))}; config fields: "
                         f"{', '.join(sorted(known))}")
    for name in NUMERIC_FIELDS:
        value = fields.get(name, 0.0)
        if value is None and name == "vf_clip_eps":  # None: the same as clip_eps
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"--config {path} sets {name}={json.dumps(value)}: not a number; give a number, or "
                             "leave the field out for the env's default")
    return fields


def parse_sweeps(specs: Sequence[str]) -> dict[str, list[float]]:
    """`["lr=1e-4,3e-4", "ent_coef=0,0.01"]` -> `{"lr": [1e-4, 3e-4], "ent_coef": [0.0, 0.01]}`; ValueError for
    a malformed spec and for a field swept twice (`ent-coef` and `ent_coef` are one field)."""
    grid = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().replace("-", "_")
        try:
            if not sep or not name:
                raise ValueError
            parsed = [float(v) for v in values.split(",")]
        except ValueError:
            raise ValueError(f"--sweep {spec!r} is invalid: write NAME=V1,V2,... e.g. --sweep lr=1e-4,3e-4") from None
        if name in grid:
            raise ValueError(f"--sweep sets {name} twice: give all its values in one --sweep {name}=V1,V2,...")
        repeated = repeated_value(parsed)
        if repeated is not None:  # the same config trained twice, ranked against itself
            raise ValueError(f"--sweep {spec!r} lists {name}={repeated:g} twice: give each value once")
        grid[name] = parsed
    return grid


def output_dir(out: Path | None, env: str) -> Path:
    """Where results go; refuses a directory that already holds files, so nothing saved is overwritten."""
    # <suite>:<name> -> runs/<suite>-<name>-<time>: Windows forbids ":" in a path, and scp reads it as a host
    # separator.
    out = out or Path("runs") / f"{env.replace(':', '-')}-{time.strftime('%Y%m%d-%H%M%S')}"
    if (out.exists() or out.is_symlink()) and not out.is_dir():
        raise ValueError(f"--out {out} is {describe(out)}, not a folder; choose another directory")
    if holds_results(out):
        raise ValueError(f"--out {out} already exists and is not empty; choose another directory")
    return out


def check_resumed_flags(args: argparse.Namespace, config: PPOConfig, seeds: Sequence[int],
                        sweep: dict[str, Sequence[float]]) -> None:
    """Raises ValueError naming the first flag that contradicts the run being resumed (its config, seeds and
    sweep grid): a resumed run keeps what it was started with."""
    for f in dataclasses.fields(PPOConfig):
        given = getattr(args, f.name)
        if given is not None and dataclasses.replace(config, **{f.name: given}) != config:
            raise ValueError(f"--resume: the run is one with {f.name}={getattr(config, f.name)!r}, "
                             f"not {given!r}; a resumed run keeps its config (drop the flag)")
    swept = {k: list(v) for k, v in parse_sweeps(args.sweep).items()} or None
    for flag, given, kept in (("--num-seeds", args.num_seeds, len(seeds)), ("--seed", args.seed, seeds[0]),
                              ("--sweep", swept, {k: list(v) for k, v in sweep.items()})):
        if given is not None and given != kept:
            raise ValueError(f"--resume: the run is one with {flag} {kept}, not {given}")


def requested_runs(args: argparse.Namespace) -> int:
    """How many runs the arguments ask for, read before anything is validated (bad values count as one run, and
    fail validation later); a resumed run's are in its checkpoint, so as many as there are CPU cores."""
    if args.resume is not None or args.auto_resume:
        return cpu_cores()
    try:
        grid = parse_sweeps(args.sweep)
    except ValueError:
        grid = {}
    return count_runs(max(args.num_seeds or 1, 1), grid)
