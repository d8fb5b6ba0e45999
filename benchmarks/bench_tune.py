"""The tuner against the same runs trained one by one: a 64-trial x 4-seed search on CartPole-v1 (the default
numeric space, no structural choices: one group), and the 256 runs of its first rung's trials each built and
jit-compiled on its own, trained to the end, in one loop. Wall time and programs compiled for each.

    python benchmarks/bench_tune.py [--trials 64] [--num-seeds 4] [--total-timesteps 200000]

The search prunes by successive halving (3 rungs, eta 3), so its trials train for fewer updates in all than the
loop's; the loop's figure is what grid-searching the same trials without either batching or pruning costs.
Each side runs in a fresh process with the compilation caches off.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOOP = """
import json, sys, time
import jax
from purejaxppo import PPOConfig, make_train
from purejaxppo.scale.search import DEFAULT_SPACE, sample_trials
trials, seeds, steps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
start, compiles = time.perf_counter(), 0
for trial in sample_trials(DEFAULT_SPACE, trials, 1000):
    config = PPOConfig(env="CartPole-v1", total_timesteps=steps, **dict(trial.params))
    for seed in range(1000, 1000 + seeds):
        train = jax.jit(make_train(config))  # a program per run, as a plain loop over runs builds it
        compiles += 1
        jax.block_until_ready(train(jax.random.key(seed)).metrics)
print(json.dumps({"seconds": time.perf_counter() - start, "compiles": compiles}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--num-seeds", type=int, default=4)
    parser.add_argument("--total-timesteps", type=int, default=200_000)
    args = parser.parse_args()
    env = {**os.environ, "JAX_ENABLE_COMPILATION_CACHE": "false"}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "purejaxppo.tune", "--env", "CartPole-v1", "--total-timesteps",
                        str(args.total_timesteps), "--trials", str(args.trials), "--num-seeds", str(args.num_seeds),
                        "--no-compile-cache", "--quiet", "--out", str(Path(tmp) / "tune")], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        tuner = time.perf_counter() - start
        summary = json.loads((Path(tmp) / "tune" / "tune.json").read_text())
    start = time.perf_counter()
    loop = subprocess.run([sys.executable, "-c", LOOP, str(args.trials), str(args.num_seeds),
                           str(args.total_timesteps)], check=True, env=env, capture_output=True, text=True)
    loop_wall = time.perf_counter() - start
    compiles = json.loads(loop.stdout.strip().splitlines()[-1])["compiles"]
    print(f"| how | wall s | programs compiled |\n|---|---:|---:|\n"
          f"| tuner: {args.trials} trials x {args.num_seeds} seeds, successive halving, then 3 x 8 seeds confirmed "
          f"| {tuner:.0f} | {summary['programs_compiled']} |\n"
          f"| the {args.trials * args.num_seeds} runs one by one, whole | {loop_wall:.0f} | {compiles} |")


if __name__ == "__main__":
    main()
