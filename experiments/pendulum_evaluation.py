"""Pendulum-v1's defaults chosen by what a user measures, the deterministic policy's evaluation, not the training
return (the stochastic policy's, exploring).

    python experiments/pendulum_evaluation.py search    # a grid around the defaults, seeds 1000-1003
    python experiments/pendulum_evaluation.py confirm   # the best few against the defaults, seeds 1004-1011
    python experiments/pendulum_evaluation.py report    # the defaults, seeds 0-3, 1000 episodes each

Each step trains through the CLI (`python -m purejaxppo.run --sweep ...`: the grid and its seeds in one program)
and evaluates every run's final policy with `purejaxppo.evaluate` (deterministic actions, its own episode seed).
Results go to experiments/tuning/Pendulum-v1-evaluation/ (a JSON per step, and results.md); a step already
there is read, not run again.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "tuning" / "Pendulum-v1-evaluation"
GRID = {"ent_coef": [0.0, 0.003, 0.01, 0.02693], "lr": [1e-3, 2e-3, 3.893e-3], "gamma": [0.9588, 0.97]}
"""Around the tuner's defaults (ent_coef 0.02693, lr 3.893e-3, gamma 0.9588), toward less exploration noise in
the learned mean, slower steps and a longer horizon."""
EVAL_SEED, SEARCH_EPISODES = 100, 256


def train_and_evaluate(grid: dict[str, list[float]], seed: int, num_seeds: int, episodes: int,
                       extra: list[str] = ()) -> dict:
    """Every configuration of `grid` on seeds `seed`.. (one CLI command), each run evaluated on `episodes`."""
    from purejaxppo import load_policy
    from purejaxppo.io.evaluation import evaluate

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        sweep = [a for name, values in grid.items() for a in ("--sweep", f"{name}={','.join(map(str, values))}")]
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "purejaxppo.run", "--env", "Pendulum-v1", "--seed", str(seed),
                        "--num-seeds", str(num_seeds), "--quiet", "--out", str(out), *sweep, *extra],
                       check=True, stdout=subprocess.DEVNULL)
        train_s = time.perf_counter() - start
        combos = list(itertools.product(*grid.values()))
        rows = []
        for c, values in enumerate(combos):
            evals = [float(evaluate(load_policy(out, run=c * num_seeds + i), episodes, EVAL_SEED).mean())
                     for i in range(num_seeds)]
            rows.append({"config": dict(zip(grid, values)), "evaluation": evals})
    return {"seeds": [seed, seed + num_seeds - 1], "episodes": episodes, "train_s": round(train_s, 1), "rows": rows}


def stored(step: str, make) -> dict:
    path = OUT / f"{step}.json"
    if not path.is_file():
        OUT.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(make(), indent=1) + "\n")
    return json.loads(path.read_text())


def best(rows: list[dict], k: int) -> list[dict]:
    return sorted(rows, key=lambda r: -np.mean(r["evaluation"]))[:k]


def table(result: dict) -> list[str]:
    from purejaxppo.scale.stats import mean_ci95

    if not result["rows"][0]["config"]:
        return []
    lines = ["| ent_coef | lr | gamma | evaluation mean | 95% CI | worst seed |", "|---:|---:|---:|---:|---|---:|"]
    for r in sorted(result["rows"], key=lambda r: -np.mean(r["evaluation"])):
        mean, low, high = mean_ci95(np.asarray(r["evaluation"]))
        c = r["config"]
        lines.append(f"| {c['ent_coef']:g} | {c['lr']:g} | {c['gamma']:g} | {mean:.1f} | [{low:.1f}, {high:.1f}] | "
                     f"{min(r['evaluation']):.1f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["search", "confirm", "report"])
    args = parser.parse_args()
    search = stored("search", lambda: train_and_evaluate(GRID, 1000, 4, SEARCH_EPISODES))
    if args.step == "search":
        print("\n".join(table(search)))
        return
    defaults = {"ent_coef": 0.02693, "lr": 3.893e-3, "gamma": 0.9588}
    candidates = [r["config"] for r in best(search["rows"], 3)]
    if defaults not in candidates:
        candidates.append(defaults)
    confirm = stored("confirm", lambda: {"candidates": [
        train_and_evaluate({k: [v] for k, v in c.items()}, 1004, 8, SEARCH_EPISODES) for c in candidates]})
    print("\n".join(table({"rows": [r for c in confirm["candidates"] for r in c["rows"]]})))
    if args.step == "report":
        from purejaxppo.scale.stats import mean_ci95

        report = stored("report", lambda: train_and_evaluate({}, 0, 4, 1000))
        evals = report["rows"][0]["evaluation"]
        mean, low, high = mean_ci95(np.asarray(evals))
        print(f"the defaults, seeds 0-3 x 1000 episodes: {mean:.1f} [{low:.1f}, {high:.1f}], per seed "
              f"{', '.join(f'{x:.1f}' for x in evals)}")


if __name__ == "__main__":
    main()
