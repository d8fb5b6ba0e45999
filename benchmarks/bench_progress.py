"""What the progress display costs: the CLI's compiled program run in one call without progress, against the
CLI's way with progress: chunks of the updates (`report_interval`) with a progress report after each.

    python benchmarks/bench_progress.py [--env CartPole-v1] [--num-seeds 1] [--repeats 5]

Both train the env's CLI defaults with one compiled program; the reports go to a real `Progress` (a tqdm bar
drawn to a pseudo-terminal, so the full terminal path runs). Run seconds: median of --repeats runs, alternating
the two.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax

from purejaxppo import PPOConfig
from purejaxppo.cli.progress import Progress
from purejaxppo.scale.schedule import report_interval
from purejaxppo.scale.sweep import Sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--num-seeds", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    config = PPOConfig.for_env(args.env)
    _, tty = os.openpty()
    progress = Progress(config.num_updates, config.batch_size, args.num_seeds, stream=os.fdopen(tty, "w"))
    job = Sweep(config, args.num_seeds)
    job.compile()

    def one_call():
        jax.block_until_ready(job.advance(job.init(), config.num_updates).metrics)

    def chunks_with_progress():
        progress.start_timer()
        state, chunk = job.init(), report_interval(None, config.num_updates)
        while state.done < config.num_updates:
            before, start = state.done, time.perf_counter()
            state = job.advance(state, chunk)
            jax.block_until_ready(state.metrics)
            progress.show(state.done, job.recent_returns(state))
            chunk = report_interval((time.perf_counter() - start) / (state.done - before), config.num_updates)
        progress.close()

    runs = {"one call, no progress": one_call, "chunks with progress bar (the CLI)": chunks_with_progress}
    times = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["one call, no progress"])
    print(f"{args.env}, {args.num_seeds} seed(s), {config.num_updates} updates; median of {args.repeats} runs")
    print("| program | run s (median) | min-max | overhead |")
    print("|---|---:|---:|---:|")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"| {name} | {med:.3f} | {min(ts):.3f}-{max(ts):.3f} | {100 * (med / base - 1):+.1f}% |")


if __name__ == "__main__":
    main()
