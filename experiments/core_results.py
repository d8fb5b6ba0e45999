"""Regenerates experiments/core_results.md: the CLI's defaults on CartPole-v1 and Pendulum-v1, 4 seeds each.

    python experiments/core_results.py [--num-seeds 4]

Each env is one `python -m purejaxppo.run --env ENV --num-seeds N` command; its wall time is measured from the
command's start (interpreter, imports and compilation included) to its exit.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax

ENVS = ("CartPole-v1", "Pendulum-v1")
HERE = Path(__file__).parent


def run(env: str, num_seeds: int, out: Path) -> dict:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "purejaxppo.run", "--env", env, "--num-seeds", str(num_seeds),
                    "--quiet", "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    return {**json.loads((out / "summary.json").read_text()), "wall_seconds": wall}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--num-seeds", type=int, default=4)
    args = parser.parse_args()
    machine = f"{platform.machine()} CPU, {__import__('os').cpu_count()} cores, jax {jax.__version__}"
    lines = [
        "# Core results: the CLI's defaults",
        "",
        f"Regenerate with `python experiments/core_results.py` ({args.num_seeds} seeds per env, seeds 0-"
        f"{args.num_seeds - 1}). Machine: {machine}. Final return: per seed, the mean episode return over the "
        "last 5% of updates; then mean ± std over seeds. Wall: the whole command, start to exit.",
        "",
        "| env | env steps per seed | final return | per seed | compile s | train s | env steps/s | wall s |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for env in ENVS:
            s = run(env, args.num_seeds, Path(tmp) / env)
            per_seed = s["final_return_per_seed"]
            std = (sum((r - s["final_return"]) ** 2 for r in per_seed) / len(per_seed)) ** 0.5
            lines.append(
                f"| {env} | {s['env_steps_per_seed']:,} | {s['final_return']:.1f} ± {std:.1f} | "
                f"{', '.join(f'{r:.1f}' for r in per_seed)} | {s['compile_seconds']:.1f} | "
                f"{s['train_seconds']:.1f} | {s['steps_per_second']:,.0f} | {s['wall_seconds']:.1f} |")
            print(lines[-1], flush=True)
    (HERE / "core_results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
