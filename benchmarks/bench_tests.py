"""What `make test` costs: its wall time and its 15 slowest tests, on this machine and in units of a calibration
run that any machine can repeat, so that two machines compare.

    .venv/bin/python benchmarks/bench_tests.py [--target test] [--args "..."] [--calibrations 3]

The calibration is a fixed CartPole training (`CALIBRATION`: jit-compiled and trained in a fresh process, the
time taken in that process from its first import of JAX to the trained parameters), timed before and after the
suite; the suite's wall time divided by its median is the figure to compare across machines. A machine that
takes three times as long for the calibration should take about three times as long for the suite.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import header

ROOT = Path(__file__).resolve().parent.parent

CALIBRATION = """
import time
start = time.perf_counter()
import jax
from purejaxppo import PPOConfig, make_train
config = PPOConfig(env="CartPole-v1", num_envs=4, num_steps=128, num_minibatches=4, update_epochs=4,
                   total_timesteps=4 * 128 * 32)
jax.block_until_ready(jax.jit(make_train(config))(jax.random.key(0)).params)
print(time.perf_counter() - start)
"""
"""32 updates of CartPole, 4 envs x 128 steps: JAX's import, one compilation and a short training, about the
work of one of the suite's commands."""



def calibration_seconds() -> float:
    out = subprocess.run([sys.executable, "-c", CALIBRATION], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(out.stdout.strip().splitlines()[-1])


def slowest(output: str) -> list[tuple[float, str, str]]:
    """pytest's --durations lines: (seconds, phase, test id)."""
    found = re.findall(r"^(\d+\.\d+)s (call|setup|teardown)\s+(\S+)", output, flags=re.M)
    return [(float(s), phase, test) for s, phase, test in found]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="test", help="the make target to time (default: test)")
    parser.add_argument("--args", default="", help="its ARGS: more pytest arguments, e.g. a file's path")
    parser.add_argument("--calibrations", type=int, default=3, help="calibration runs before and after, each")
    args = parser.parse_args()
    before = [calibration_seconds() for _ in range(args.calibrations)]
    start = time.perf_counter()
    suite = subprocess.run(["make", "--no-print-directory", args.target, f"ARGS={args.args}"], capture_output=True,
                           text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    after = [calibration_seconds() for _ in range(args.calibrations)]
    unit = statistics.median(before + after)
    outcome = suite.stdout.strip().splitlines()[-1] if suite.stdout.strip() else f"exit {suite.returncode}"
    print(header())
    print(f"\n`make {args.target}`: {wall:.0f} s wall ({outcome}); calibration run median {unit:.2f} s "
          f"(before {', '.join(f'{t:.2f}' for t in before)}; after {', '.join(f'{t:.2f}' for t in after)}): "
          f"{wall / unit:.0f} calibration runs\n")
    print("| test | phase | s | calibration runs |\n|---|---|---:|---:|")
    for seconds, phase, test in slowest(suite.stdout):
        print(f"| `{test}` | {phase} | {seconds:.1f} | {seconds / unit:.1f} |")
    if suite.returncode != 0:
        print(suite.stdout[-4000:], suite.stderr[-2000:], sep="\n", file=sys.stderr)
        sys.exit(suite.returncode)


if __name__ == "__main__":
    main()
