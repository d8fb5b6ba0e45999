"""Regenerates experiments/reference_results.md: final return over 8 seeds on ten gymnax envs, each at a stated
budget, beside the figures published PPO implementations report.

    python experiments/reference_results.py [--num-seeds 8] [--envs CartPole-v1 Acrobot-v1 ...]

Each env is one `python -m purejaxppo.run --env ENV --num-seeds N --total-timesteps BUDGET [flags]` command
(the env's CLI defaults otherwise): all seeds in one compiled program. Final return: per seed, the mean episode
return over the last 5% of updates; the table gives the mean over seeds with its 95% Student-t interval. Wall:
the whole command, start (imports, compilation) to exit. Rows are appended to the table as each env finishes, so
an interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax

HERE = Path(__file__).parent

# env -> (env steps per seed, extra CLI flags)
BUDGETS: dict[str, tuple[int, list[str]]] = {
    "CartPole-v1": (500_000, []),
    "Acrobot-v1": (500_000, []),
    "MountainCar-v0": (1_000_000, []),
    "Pendulum-v1": (1_000_000, []),
    "MountainCarContinuous-v0": (1_000_000, []),
    "Asterix-MinAtar": (1_000_000, []),
    "Breakout-MinAtar": (1_000_000, []),
    "Freeway-MinAtar": (1_000_000, []),
    "SpaceInvaders-MinAtar": (1_000_000, []),
    "MemoryChain-bsuite": (100_000, []),  # its defaults are recurrent
}

# env -> what published PPO implementations report, at their budget (env steps), read from their repositories,
# not measured here. gymnax: its README's table of trained checkpoints (gymnax-blines' PPO; budgets from
# gymnax-blines' agents/<env>/ppo.yaml; one number, no spread or seed count). SB3 zoo: rl-baselines3-zoo's
# benchmark.md, one trained agent evaluated deterministically on Gym's version of the env.
PUBLISHED: dict[str, str] = {
    "CartPole-v1": "500 at 150k (gymnax); 500.0 ± 0.0 at 100k (SB3 zoo)",
    "Acrobot-v1": "-80 at 500k (gymnax); -73.5 ± 18.2 at 1M (SB3 zoo)",
    "MountainCar-v0": "-118 at 500k (gymnax); -110.4 ± 19.5 at 1M (SB3 zoo)",
    "Pendulum-v1": "-130 at 1M (gymnax); -172.2 ± 104.2 at 100k (SB3 zoo)",
    "MountainCarContinuous-v0": "92 at 1M (gymnax); 88.3 ± 2.6 at 20k (SB3 zoo)",
    "Asterix-MinAtar": "15 at 10M (gymnax)",
    "Breakout-MinAtar": "28 at 10M (gymnax)",
    "Freeway-MinAtar": "58 at 10M (gymnax)",
    "SpaceInvaders-MinAtar": "131 at 10M (gymnax)",
    "MemoryChain-bsuite": "0.1 at 150k (gymnax; PPO or ES not said)",
}


def run(env: str, num_seeds: int, budget: int, flags: list[str], out: Path) -> dict:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "purejaxppo.run", "--env", env, "--num-seeds", str(num_seeds),
                    "--total-timesteps", str(budget), *flags, "--quiet", "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    return {**json.loads((out / "summary.json").read_text()), "wall_seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--num-seeds", type=int, default=8)
    parser.add_argument("--envs", nargs="+", default=list(BUDGETS), choices=list(BUDGETS))
    parser.add_argument("--out", type=Path, default=HERE / "reference_results.md")
    args = parser.parse_args()
    machine = f"{platform.machine()} CPU, {os.cpu_count()} cores, no GPU, jax {jax.__version__}"
    lines = [
        "# Reference results",
        "",
        f"Regenerate with `python experiments/reference_results.py` ({args.num_seeds} seeds per env, seeds 0-"
        f"{args.num_seeds - 1}, each env's CLI defaults at the budget shown). Machine: {machine}. Final return: per "
        "seed, the mean episode return over the last 5% of updates; mean over seeds and its 95% t interval. "
        "Wall: the whole command, start (imports, compilation) to exit, all seeds in one program. Among the "
        "defaults (`PPOConfig.for_env`): MountainCarContinuous-v0 normalizes observations and rewards, "
        "MemoryChain-bsuite is recurrent, MinAtar uses 64 envs and relu. The CLI spreads the seeds over a CPU "
        "device per core. MinAtar's budget here is a tenth of the 10M steps of the published figures.",
        "",
        "| env | flags | env steps per seed | final return | 95% CI | worst, best seed | wall s | published PPO |",
        "|---|---|---:|---:|---|---|---:|---|",
    ]
    args.out.write_text("\n".join(lines) + "\n")
    with tempfile.TemporaryDirectory() as tmp:
        for env in args.envs:
            budget, flags = BUDGETS[env]
            s = run(env, args.num_seeds, budget, flags, Path(tmp) / env)
            low, high = s["ci95"]
            per_seed = s["final_return_per_seed"]
            lines.append(
                f"| {env} | {' '.join(flags) or '-'} | {s['env_steps_per_seed']:,} | {s['final_return']:.1f} | "
                f"[{low:.1f}, {high:.1f}] | {min(per_seed):.1f}, {max(per_seed):.1f} | {s['wall_seconds']:.0f} | "
                f"{PUBLISHED.get(env, 'n/a')} |")
            print(lines[-1], flush=True)
            args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
