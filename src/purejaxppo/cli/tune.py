"""The tuning command:

    python -m purejaxppo.tune --env Acrobot-v1 --trials 64 --num-seeds 4 --param lr=log:1e-4:1e-2 \\
        --param num_envs=8,16,32

Searches hyperparameters around the env's defaults (and any config flag or `--config` file given) by successive
halving (`purejaxppo.scale.tune`), trains the best few again on fresh seeds, and writes to `--out` (default
runs/tune-<env>-<time>/): trials.csv, ranked.md, best.json (`python -m purejaxppo.run --config best.json` trains
the winner), scores.png and tune.json. It saves where it stands after every rung: `--resume DIR` continues a
tuner that was stopped or killed. Bad input is one line, exit status 2, before anything compiles.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from purejaxppo.cli.args import OneLineParser, add_config_flags, config_from_args
from purejaxppo.cli.caches import make_files_private, usable_cache_dir, use_compilation_cache
from purejaxppo.cli.plan import start_platform
from purejaxppo.cli.run_dir import RunDirLock, holds_results
from purejaxppo.cli.startup import defer_renderer_imports, quiet_xla_logs, tolerate_closed_stdout
from purejaxppo.io.run_meta import check_env_from_file
from purejaxppo.scale.compilation import cpu_cores, use_cpu_cores

STATE = "tune_state.json"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m purejaxppo.tune",
                           description="Tune PPO's hyperparameters on an env by successive halving.")
    parser.add_argument("--env", help="env id (default CartPole-v1)")
    parser.add_argument("--config", type=Path, metavar="FILE", help="a JSON file of config fields to tune around")
    parser.add_argument("--trials", type=int, default=64, help="trials of the search (default 64)")
    parser.add_argument("--num-seeds", type=int, default=4, help="seeds per trial in the search (default 4)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=SPACE",
                        help="search NAME over SPACE: log:LOW:HIGH, lin:LOW:HIGH or V1,V2,... (repeatable; "
                             "replaces that field's default space; structural fields make groups)")
    parser.add_argument("--only", action="store_true",
                        help="search only the --param fields, not the default numeric space as well")
    parser.add_argument("--rungs", type=int, default=3, help="successive-halving rungs (default 3)")
    parser.add_argument("--eta", type=int, default=3, help="keep the best 1/eta at each rung (default 3)")
    parser.add_argument("--confirm", type=int, default=3, help="best trials trained again on fresh seeds (3)")
    parser.add_argument("--confirm-seeds", type=int, default=8, help="fresh seeds of that confirmation (8)")
    parser.add_argument("--seed", type=int, default=1000,
                        help="first search seed (default 1000: seeds 0-999, where results are reported, unused)")
    parser.add_argument("--out", type=Path, help="output folder (default runs/tune-<env>-<time>/)")
    parser.add_argument("--resume", type=Path, metavar="DIR", help="continue the tuner in DIR where it stopped")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.add_argument("--no-compile-cache", dest="compile_cache", action="store_false",
                        help="do not use the compile caches")
    add_config_flags(parser)
    return parser


def _check(args: argparse.Namespace) -> None:
    for flag in ("trials", "num_seeds", "rungs", "eta", "confirm", "confirm_seeds"):
        value = getattr(args, flag)
        if value < (2 if flag == "eta" else 1):
            raise ValueError(f"--{flag.replace('_', '-')} {value} is invalid: must be at least "
                             f"{2 if flag == 'eta' else 1}")


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
    spec = {"config": config.to_dict(), "params": [str(p) for p in args.param], "only": args.only,
            "trials": args.trials, "num_seeds": args.num_seeds, "rungs": args.rungs, "eta": args.eta,
            "confirm": args.confirm, "confirm_seeds": args.confirm_seeds, "seed": args.seed}
    if args.only and not given:
        raise ValueError("--only searches the --param fields alone: give at least one --param")
    return spec


def space_of(spec: dict[str, Any]):
    from purejaxppo.scale.search import DEFAULT_SPACE, parse_param

    given = dict(parse_param(p) for p in spec["params"])
    return given if spec["only"] else {**DEFAULT_SPACE, **given}


class Tuner:
    """A search in its folder: the spec, where each group stands, checkpointed at every rung."""

    def __init__(self, out: Path, spec: dict[str, Any], quiet: bool, program_cache: Path | None):
        from purejaxppo.core.config import PPOConfig
        from purejaxppo.scale.search import check_space, rung_updates, sample_trials

        self.out, self.spec, self.quiet, self.program_cache = out, spec, quiet, program_cache
        self.config = PPOConfig(**spec["config"])
        self.space = space_of(spec)
        check_space(self.config, self.space)
        self.trials = sample_trials(self.space, spec["trials"], spec["seed"])
        self.groups: dict[tuple, list] = {}
        for t in self.trials:
            self.groups.setdefault(t.structure, []).append(t)
        self.rungs = {s: rung_updates(dataclasses.replace(self.config, **dict(s)).num_updates, spec["rungs"],
                                      spec["eta"]) for s in self.groups}
        self.state = json.loads((out / STATE).read_text()) if (out / STATE).is_file() else {
            "spec": spec, "groups": {}, "confirmed": {}, "compiles": 0, "seconds": 0.0}
        self.last_line = 0.0
        self.env = None  # made once (`check`), for every group, rung and confirmation

    def check(self) -> None:
        """Makes and checks the env, the policy for it, and that one run's batches fit: before anything compiles."""
        from purejaxppo.core.envs import run_env
        from purejaxppo.core.train import make_trainer
        from purejaxppo.scale.memory import check_sweep_fits
        from purejaxppo.scale.program import place_runs

        self.env = run_env(self.config.env, self.config.env_kwargs)
        make_trainer(self.config, env=self.env)
        check_sweep_fits(self.config, self.env, place_runs(1), 1)

    def save(self) -> None:
        tmp = self.out / f".{STATE}.tmp"
        tmp.write_text(json.dumps(self.state, indent=1) + "\n")
        tmp.replace(self.out / STATE)

    def report(self, label: str, done: int, stop: int) -> None:
        if not self.quiet and (time.monotonic() - self.last_line > 5 or done == stop):
            self.last_line = time.monotonic()
            print(f"{label}: update {done}/{stop}", flush=True)

    def search_group(self, g: int, structure: tuple) -> None:
        """Trains group `g` rung by rung from where it stands, saving after each."""
        from purejaxppo.io.checkpoint import Checkpointer
        from purejaxppo.scale.tune import GroupSearch

        members, saved = self.groups[structure], self.state["groups"].get(str(g))
        search = GroupSearch(self.config, members, self.spec["num_seeds"], self.spec["seed"], self.spec["eta"],
                             self.rungs[structure], program_cache=self.program_cache, env=self.env)
        checkpointer = Checkpointer(self.out / "groups" / str(g), allow_env=self.config.env)  # checked: _locate
        if saved is not None:
            search.rung, search.alive = saved["rung"], saved["alive"]
            search.scores = {int(k): v for k, v in saved["scores"].items()}
            if not search.done:  # the checkpoint of the rung the state records, not a later one saved before a kill
                job = search.job()
                restored, done = checkpointer.restore(job.to_host(job.init()), step=search.rungs[search.rung - 1])
                search.state = restored.replace(done=done)
        while not search.done:
            start = time.perf_counter()
            search.step(self.report, f"group {g + 1}/{len(self.groups)}, rung {search.rung + 1}/{len(search.rungs)}")
            if search.state is not None:
                alive = [members[i] for i in search.alive]
                sweep = {n: [dict(t.params)[n] for t in alive] for n, _ in alive[0].params}
                checkpointer.save(search.state, search.state.done, {
                    "config": dataclasses.replace(self.config, **dict(structure)).to_dict(),
                    "seeds": list(range(self.spec["seed"], self.spec["seed"] + self.spec["num_seeds"])),
                    "sweep": sweep})
            self.state["groups"][str(g)] = {"rung": search.rung, "alive": search.alive, "scores": search.scores}
            self.state["compiles"] += 1
            self.state["seconds"] += time.perf_counter() - start
            self.save()

    def scored(self):
        from purejaxppo.scale.tune import Scored, rank

        scores = {int(k): v for group in self.state["groups"].values() for k, v in group["scores"].items()}
        return rank([Scored(t, scores[t.index]) for t in self.trials])

    def confirm(self) -> list:
        """The best trials trained again on fresh seeds (each group's at once), recorded as they finish."""
        from purejaxppo.scale.tune import confirm

        ranked = self.scored()
        best = ranked[:self.spec["confirm"]]
        for s in best:
            if str(s.trial.index) in self.state["confirmed"]:
                s.confirmed = self.state["confirmed"][str(s.trial.index)]
        todo = [s for s in best if s.confirmed is None]
        if todo:
            start = time.perf_counter()
            self.state["compiles"] += confirm(self.config, todo, self.spec["confirm_seeds"],
                                              self.spec["seed"] + self.spec["num_seeds"], self.report,
                                              self.program_cache, self.env)
            for s in todo:
                self.state["confirmed"][str(s.trial.index)] = [float(x) for x in s.confirmed]
            self.state["seconds"] += time.perf_counter() - start
            self.save()
        import numpy as np

        for s in best:
            s.confirmed = np.asarray(s.confirmed, np.float64)
        return ranked


def write_results(tuner: Tuner, ranked: list) -> str:
    """The tuner's outputs; the ranked table, to print."""
    from purejaxppo.io.tune_report import plot_scores, ranked_table, write_best, write_trials_csv
    from purejaxppo.scale.tune import best_config

    best, winner = best_config(tuner.config, ranked)
    all_rungs = sorted({u for r in tuner.rungs.values() for u in r})
    write_trials_csv(tuner.out / "trials.csv", ranked, all_rungs)
    table = ranked_table(ranked)
    (tuner.out / "ranked.md").write_text(table)
    write_best(tuner.out / "best.json", best)
    plot_scores(tuner.out / "scores.png", ranked, tuner.space)
    mean, low, high = winner.confirmed_ci()
    summary = {"env": tuner.config.env, "trials": len(tuner.trials), "groups": len(tuner.groups),
               "programs_compiled": tuner.state["compiles"], "train_seconds": round(tuner.state["seconds"], 1),
               "search_seeds": [tuner.spec["seed"], tuner.spec["seed"] + tuner.spec["num_seeds"] - 1],
               "confirm_seeds": [tuner.spec["seed"] + tuner.spec["num_seeds"],
                                 tuner.spec["seed"] + tuner.spec["num_seeds"] + tuner.spec["confirm_seeds"] - 1],
               "best_trial": winner.trial.index, "best_confirmed_return": mean, "best_ci95": [low, high],
               "best": dict(winner.trial.structure + winner.trial.params), "spec": tuner.spec}
    (tuner.out / "tune.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return table


def _locate(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """The folder and spec: a new tuner's (its folder must be empty), or the one `--resume` continues."""
    if args.resume is not None:
        path = args.resume / STATE
        try:
            spec = json.loads(path.read_text())["spec"]
            _validate(spec)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"--resume: {args.resume} holds no tuner this version wrote ({type(e).__name__}: "
                             f"{e})") from None
        check_env_from_file(spec["config"].get("env"), f"--resume: {path}", args.env)
        return args.resume, spec
    spec = spec_from_args(args)
    env = spec["config"]["env"].replace(":", "-")
    out = args.out or Path("runs") / f"tune-{env}-{time.strftime('%Y%m%d-%H%M%S')}"
    if holds_results(out):
        raise ValueError(f"--out {out} already exists and is not empty; choose another directory")
    return out, spec


def _validate(spec: Any) -> None:
    """ValueError unless `spec` is what `spec_from_args` writes."""
    from purejaxppo.core.config import PPOConfig

    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
        raise ValueError("no spec")
    PPOConfig(**spec["config"])
    for key in ("trials", "num_seeds", "rungs", "eta", "confirm", "confirm_seeds", "seed"):
        if not isinstance(spec.get(key), int):
            raise ValueError(f"{key} is not an integer")
    if not isinstance(spec.get("params"), list) or not all(isinstance(p, str) for p in spec["params"]):
        raise ValueError("params is not a list of strings")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    use_cpu_cores(cpu_cores())
    defer_renderer_imports()
    tolerate_closed_stdout()
    lock = None
    try:
        start_platform()
        _check(args)
        out, spec = _locate(args)
        cache = usable_cache_dir() if args.compile_cache else None  # checked before the folder is claimed
        lock = RunDirLock(out)
        tuner = Tuner(out, spec, args.quiet, cache / "programs" if cache else None)
        tuner.check()
        try:
            tuner.save()
        except OSError as e:
            raise ValueError(f"cannot write to {out}: {e.strerror or e}; make room, or choose another folder") from None
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        if lock is not None:
            lock.release()
        return 2
    except KeyboardInterrupt:
        print("interrupted while starting, before anything was trained", file=sys.stderr)
        return 130
    resume = f"continue with: python -m purejaxppo.tune --resume {out}"
    try:
        if cache:
            use_compilation_cache(cache)
        print(f"tuning {tuner.config.env}: {len(tuner.trials)} trials in {len(tuner.groups)} structural group(s) x "
              f"{spec['num_seeds']} seeds, rungs at updates {sorted({u for r in tuner.rungs.values() for u in r})}",
              flush=True)
        with quiet_xla_logs() if cache else contextlib.nullcontext():
            for g, structure in enumerate(tuner.groups):
                tuner.search_group(g, structure)
            ranked = tuner.confirm()
        if cache:
            make_files_private(cache)
        print(write_results(tuner, ranked), end="")
        print(f"{tuner.state['compiles']} programs compiled, {tuner.state['seconds']:.0f} s; "
              f"best.json and the tables in {out}/")
        return 0
    except KeyboardInterrupt:
        print(f"interrupted: every rung the tuner finished is saved in {out}; {resume}", file=sys.stderr)
        return 130
    except ValueError as e:  # a checkpoint that does not fit (CheckpointError), a group that cannot fit in memory
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, say; CheckpointSaveError included
        print(f"error: could not write to {out} ({e.strerror or e}); the rungs saved before are kept: make room, "
              f"then {resume}", file=sys.stderr)
        return 1
    finally:
        lock.release()
