"""The evaluation command:

    python -m purejaxppo.evaluate RUN_DIR [--episodes 100] [--seed 0] [--run N] [--stochastic] [--env ID]
        [--render out.gif]

Loads a run's policy (`purejaxppo.io.policy`), prints the mean return of `--episodes` deterministic (or sampled)
episodes with its 95% interval, and with --render animates episode 0 (`purejaxppo.io.evaluation`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from purejaxppo.cli.args import OneLineParser
from purejaxppo.cli.plan import start_platform
from purejaxppo.cli.startup import defer_renderer_imports, tolerate_closed_stdout


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m purejaxppo.evaluate", description="Evaluate a trained policy from a run directory.")
    parser.add_argument("run_dir", type=Path, metavar="DIR", help="a run directory (the --out of purejaxppo.run)")
    parser.add_argument("--episodes", type=int, default=100, help="episodes to run, one env each (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the evaluation episodes (default 0)")
    parser.add_argument("--run", type=int, default=None, metavar="N",
                        help="which run of the directory: N = config * num_seeds + seed index (default: the "
                             "first seed of the best configuration)")
    parser.add_argument("--stochastic", action="store_true",
                        help="sample actions from the policy (default: its most probable action, or its mean)")
    parser.add_argument("--env", metavar="ID", help="the run's env id, when it is a package.module:factory id: "
                        "evaluating imports and runs that code, which the run's files alone may not ask for")
    parser.add_argument("--render", type=Path, metavar="PATH",
                        help="also write an animation of episode 0 (.gif) with gymnax's visualizer")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    defer_renderer_imports()
    tolerate_closed_stdout()
    try:
        start_platform()  # before gymnax's import starts the backend
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from purejaxppo.io.evaluation import check_renderable, evaluate, render, summary_line
    from purejaxppo.io.policy import load_policy

    deterministic = not args.stochastic
    try:
        if args.episodes < 1:
            raise ValueError(f"--episodes {args.episodes} is invalid: must be at least 1")
        policy = load_policy(args.run_dir, args.run, env=args.env)
        if args.render is not None:  # before evaluating: a render that cannot be done fails at once
            check_renderable(policy.env_id, args.render)
        returns = evaluate(policy, args.episodes, args.seed, deterministic)  # checks its size before compiling
    except ValueError as e:  # CheckpointError included
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(summary_line(policy, returns, deterministic), flush=True)
    if args.render is not None:
        print(f"rendering episode 0 to {args.render} ...", flush=True)  # frame by frame: slower than evaluating
        try:
            steps, ret = render(policy, args.render, args.seed, deterministic)
        except OSError as e:  # the disk filled up, or the folder changed since it was checked
            print(f"error: could not write {args.render}: {e.strerror or e}", file=sys.stderr)
            return 1
        print(f"wrote {args.render}: episode 0, {steps} steps, return {ret:.1f}")
    return 0
