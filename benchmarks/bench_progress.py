"""What the progress display costs: the CLI's compiled program with and without its host callback.

    python benchmarks/bench_progress.py [--env CartPole-v1] [--num-seeds 1] [--repeats 5]

Both programs train the env's CLI defaults; "with" reports to a real `Progress` (a tqdm bar drawn to a
pseudo-terminal, so the full terminal path runs) at most 100 times a run. Run seconds: median of --repeats calls,
alternating the two.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax

from purejaxppo import PPOConfig
from purejaxppo.progress import Progress
from purejaxppo.sweeps import Sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--num-seeds", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    config = PPOConfig.for_env(args.env)
    _, tty = os.openpty()
    progress = Progress(config.num_updates, config.batch_size, args.num_seeds, stream=os.fdopen(tty, "w"))
    jobs = {"without callback": Sweep(config, args.num_seeds), "with progress bar": Sweep(config, args.num_seeds,
                                                                                          callback=progress)}
    for job in jobs.values():
        job.compile()
    times = {name: [] for name in jobs}
    for _ in range(args.repeats):
        for name, job in jobs.items():
            progress.start_timer()
            start = time.perf_counter()
            jax.block_until_ready(job.advance(job.init(), config.num_updates).metrics)
            times[name].append(time.perf_counter() - start)
            progress.close()
    base = statistics.median(times["without callback"])
    print(f"{args.env}, {args.num_seeds} seed(s), {config.num_updates} updates; median of {args.repeats} runs")
    print("| program | run s (median) | min-max | overhead |")
    print("|---|---:|---:|---:|")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"| {name} | {med:.3f} | {min(ts):.3f}-{max(ts):.3f} | {100 * (med / base - 1):+.1f}% |")


if __name__ == "__main__":
    main()
