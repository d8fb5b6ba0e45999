"""A sweep of 3 learning rates x 8 seeds as one compiled program, against the same 24 runs done one by one.

    python benchmarks/bench_sweep.py [--env CartPole-v1] [--total-timesteps 500000] [--seeds 8]

"One by one" is what a loop over configs and seeds costs a user: each run is built and jit-compiled anew
(`jax.jit(make_train(config))(key)`), then trained. Both sides use the env's CLI defaults and the same keys.
Wall times include compilation; the sweep's is also shown split into compile and train.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import jax
import numpy as np

from purejaxppo import PPOConfig, make_train
from purejaxppo.scale.stats import final_returns
from purejaxppo.scale.sweep import Sweep

LRS = (1e-4, 2.5e-4, 1e-3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--total-timesteps", type=int, default=500_000)
    parser.add_argument("--seeds", type=int, default=8)
    args = parser.parse_args()
    config = PPOConfig.for_env(args.env, total_timesteps=args.total_timesteps)
    devices = jax.devices()
    print(f"{args.env}, {config.num_updates * config.batch_size:,} steps per run, {len(LRS)} lrs x {args.seeds} "
          f"seeds; jax {jax.__version__}, {len(devices)} {devices[0].platform} device(s): {devices[0].device_kind}")

    start = time.perf_counter()
    job = Sweep(config, num_seeds=args.seeds, lr=list(LRS))
    job.compile()
    result = job.run()
    sweep_wall = time.perf_counter() - start
    sweep_final = result.final_returns.mean(axis=1)

    start = time.perf_counter()
    separate_final = np.zeros((len(LRS), args.seeds))
    for c, lr in enumerate(LRS):
        for s in range(args.seeds):
            out = jax.jit(make_train(dataclasses.replace(config, lr=lr)))(jax.random.key(s))
            separate_final[c, s] = final_returns(np.asarray(out.metrics["episode_return"])[None])[0]
    separate_wall = time.perf_counter() - start

    runs = len(LRS) * args.seeds
    steps = runs * config.num_updates * config.batch_size
    print("| how | wall s | compile s | train s | env steps/s (wall) | final return per lr |")
    print("|---|---:|---:|---:|---:|---|")
    print(f"| one sweep program | {sweep_wall:.1f} | {result.compile_seconds:.1f} | {result.train_seconds:.1f} | "
          f"{steps / sweep_wall:,.0f} | {', '.join(f'{r:.1f}' for r in sweep_final)} |")
    print(f"| {runs} separate runs | {separate_wall:.1f} | | | {steps / separate_wall:,.0f} | "
          f"{', '.join(f'{r:.1f}' for r in separate_final.mean(axis=1))} |")
    print(f"speed-up: {separate_wall / sweep_wall:.1f}x")


if __name__ == "__main__":
    main()
