"""Throughput of the compiled training program: compile seconds and env steps/s, 1 and 8 seeds.

    python benchmarks/bench_train.py [--env CartPole-v1] [--seeds 1 8] [--repeats 3]

Uses the CLI's defaults for the env (`PPOConfig.for_env`), compiled and placed as the CLI does it: at
`compiler_options()`, the seeds split over the devices (on a CPU one per core).
Compile time is jit lowering + XLA compilation; run time is a call of the compiled program (its median over
--repeats calls), with no progress callback.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from purejaxppo.scale.compilation import compiler_options, use_cpu_cores

use_cpu_cores()  # before gymnax's import computes
from purejaxppo import PPOConfig, make_train  # noqa: E402
from purejaxppo.scale.parallel import runs_sharding  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))  # machine, beside this file
from machine import header  # noqa: E402


def measure(config: PPOConfig, num_seeds: int, repeats: int) -> dict[str, float]:
    keys = jax.vmap(jax.random.key)(jnp.arange(num_seeds))
    rows = runs_sharding(None, num_seeds)  # over the CPU devices use_cpu_cores made, as the CLI does
    start = time.perf_counter()
    compiled = jax.jit(make_train(config), in_shardings=rows,
                       compiler_options=compiler_options()).lower(keys).compile()
    compile_seconds = time.perf_counter() - start
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(keys))
        runs.append(time.perf_counter() - start)
    run_seconds = statistics.median(runs)
    steps = config.num_updates * config.batch_size * num_seeds
    return dict(compile=compile_seconds, run=run_seconds, run_min=min(runs), run_max=max(runs),
                steps_per_second=steps / run_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = PPOConfig.for_env(args.env)
    print(f"{args.env}: {config.num_envs} envs x {config.num_steps} steps, {config.update_epochs} epochs x "
          f"{config.num_minibatches} minibatches, {config.num_updates * config.batch_size:,} steps per seed")
    print(header(), flush=True)
    print(f"| seeds | compile s | run s (median, min-max of {args.repeats}) | env steps/s |")
    print("|---:|---:|---:|---:|")
    for n in args.seeds:
        r = measure(config, n, args.repeats)
        print(f"| {n} | {r['compile']:.1f} | {r['run']:.2f} ({r['run_min']:.2f}-{r['run_max']:.2f}) | "
              f"{r['steps_per_second']:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
