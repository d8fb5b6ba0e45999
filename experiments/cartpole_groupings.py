"""CartPole-v1's defaults, seeds 0-15 trained 16 at a time, 4 at a time and one at a time: a seed's trajectory
depends on float rounding, and so on how the seeds are grouped on devices; the defaults must solve every seed
whichever way. Writes experiments/cartpole_groupings.md.

    python experiments/cartpole_groupings.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def final_returns(seed: int, num_seeds: int, out: Path) -> list[float]:
    subprocess.run([sys.executable, "-m", "purejaxppo.run", "--env", "CartPole-v1", "--seed", str(seed),
                    "--num-seeds", str(num_seeds), "--quiet", "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return json.loads((out / "summary.json").read_text())["final_return_per_seed"]


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for at_a_time in (16, 4, 1):
            returns = []
            for first in range(0, 16, at_a_time):
                returns += final_returns(first, at_a_time, Path(tmp) / f"{at_a_time}-{first}")
            rows.append((at_a_time, returns))
            print(at_a_time, returns, flush=True)
    lines = ["# CartPole-v1: the defaults, seeds 0-15, grouped three ways", "",
             "`python experiments/cartpole_groupings.py`: the CLI's defaults (`python -m purejaxppo.run --env "
             "CartPole-v1 --seed S --num-seeds N`), seeds 0-15 as one command of 16 seeds, four of 4, and sixteen "
             "of one. Final return per seed: the mean episode return over the last 5% of updates.", "",
             "| seeds at a time | mean | worst seed | seeds below 475 | per seed |", "|---:|---:|---:|---:|---|"]
    for at_a_time, returns in rows:
        r = np.asarray(returns)
        lines.append(f"| {at_a_time} | {r.mean():.1f} | {r.min():.1f} | {(r < 475).sum()} | "
                     f"{' '.join(f'{x:.0f}' for x in r)} |")
    (HERE / "cartpole_groupings.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
