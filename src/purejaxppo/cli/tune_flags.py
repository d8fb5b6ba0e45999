"""The tuner command's search flags: their defaults, their ranges, and what `--resume` refuses (a resumed tuner
keeps the search it started, whose trials and saved rungs its spec decides)."""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Any

from purejaxppo.cli.args import read_config_file
from purejaxppo.scale.plan import MAX_RUNS, check_seeds

SEARCH_DEFAULTS = {"trials": 64, "num_seeds": 4, "rungs": 3, "eta": 3, "confirm": 3, "confirm_seeds": 8,
                   "seed": 1000, "search_fraction": 1.0}
"""The search's flags and what a new tuner takes when one is not given: the parser leaves them None, so that
a flag given beside --resume is told from one left out (`check_resumed_flags`)."""


def check_search_flags(args: argparse.Namespace) -> None:
    """ValueError (one line) for a search flag given out of its range."""
    for flag in ("trials", "num_seeds", "rungs", "eta", "confirm", "confirm_seeds"):
        value = getattr(args, flag)
        if value is not None and value < (2 if flag == "eta" else 1):
            raise ValueError(f"--{flag.replace('_', '-')} {value} is invalid: must be at least "
                             f"{2 if flag == 'eta' else 1}")
    if args.search_fraction is not None and not 0 < args.search_fraction <= 1:
        raise ValueError(f"--search-fraction {args.search_fraction} is invalid: must be in (0, 1], e.g. 0.1 to "
                         "search at a tenth of the budget")
    if args.trials is not None and args.trials > MAX_RUNS:
        raise ValueError(f"--trials {args.trials} is invalid: must be at most {MAX_RUNS:,}")
    given = {key: default if getattr(args, key) is None else getattr(args, key)
             for key, default in SEARCH_DEFAULTS.items()}
    for flag, first, count in (("--num-seeds", given["seed"], given["num_seeds"]),
                               ("--confirm-seeds", given["seed"] + given["num_seeds"], given["confirm_seeds"])):
        try:  # the search's seeds from --seed, then the confirmation's
            check_seeds(first, count)
        except ValueError as e:
            raise ValueError(f"{flag} {count} with --seed {given['seed']}: {e}") from None


def check_resumed_flags(args: argparse.Namespace, spec: dict[str, Any]) -> None:
    """ValueError (one line) naming the first flag given beside --resume that differs from the search `spec`
    records: a resumed tuner keeps the search it started, whose trials and saved rungs the spec decides."""
    from purejaxppo.core.config import PPOConfig
    from purejaxppo.scale.search import parse_param

    def refuse(kept: str, given: str):
        raise ValueError(f"--resume: the tuner is one with {kept}, not {given}; a resumed tuner keeps its search "
                         "(drop the flag)")

    for key, default in SEARCH_DEFAULTS.items():
        given, kept = getattr(args, key), spec.get(key, default)
        if given is not None and given != kept:
            refuse(_as_flag(key, kept), str(given))
    if args.only and not spec["only"]:
        refuse("no --only", "--only")
    given_space, kept_space = (dict(parse_param(p) for p in params) for params in (args.param, spec["params"]))
    if args.param and given_space != kept_space:
        refuse(" ".join(f"--param {n}={d}" for n, d in kept_space.items()) or "no --param",
               " ".join(f"--param {n}={d}" for n, d in given_space.items()))
    config = PPOConfig(**spec["config"])
    if args.env is not None and args.env != config.env:
        refuse(f"--env {config.env}", args.env)
    for name, value in (read_config_file(args.config) if args.config is not None else {}).items():
        kept = getattr(config, name)
        if kept != value and (name == "env" or dataclasses.replace(config, **{name: value}) != config):
            refuse(f"{name}={kept!r}", f"--config {args.config}'s {name}={value!r}")
    for f in dataclasses.fields(PPOConfig):
        given = getattr(args, f.name) if f.name != "env" else None
        if given is not None and dataclasses.replace(config, **{f.name: given}) != config:
            refuse(_as_flag(f.name, getattr(config, f.name)),
                   _as_flag(f.name, given) if isinstance(given, bool) else _text(given))
    if args.out is not None and os.path.abspath(args.out) != os.path.abspath(args.resume):
        raise ValueError(f"--resume: the tuner writes to {args.resume}, not --out {args.out} (drop --out)")


def _as_flag(name: str, value: Any) -> str:
    """`name`'s flag as a command line gives `value`: `--trials 8`, `--no-anneal-lr`, `--hidden-sizes 64 64`."""
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else f"--no-{flag[2:]}"
    return f"{flag} {_text(value)}"


def _text(value: Any) -> str:
    """A flag's value as typed: `64 64`, env kwargs as `NAME=VALUE ...` (none: `(none)`)."""
    if isinstance(value, dict) or (isinstance(value, tuple) and all(isinstance(v, tuple) for v in value)):
        pairs = value.items() if isinstance(value, dict) else value
        return " ".join(f"{k}={v}" for k, v in pairs) or "(none)"
    return " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
