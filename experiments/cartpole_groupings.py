"""CartPole-v1's defaults on seeds 0-63, through the CLI in commands of 64, 16, 4, 2 and 1 seeds, under the
machine's own XLA CPU code and again with the instruction set held to SSE4.2: a seed's trajectory depends on float
rounding, so on how seeds are grouped on devices and on the processor; the defaults must solve every seed either
way. Writes experiments/cartpole_groupings.json (every seed) and experiments/cartpole_groupings.md.

    python experiments/cartpole_groupings.py [--settings default sse4_2] [--groups 64 16 4 2 1]

A (setting, group) already in the JSON is kept, so a stopped run goes on where it was, and two commands may run
different settings at once.
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

import numpy as np

HERE = Path(__file__).parent
RESULTS = HERE / "cartpole_groupings.json"
SEEDS = 64
SETTINGS = {"default": "", "sse4_2": "--xla_cpu_max_isa=SSE4_2"}
"""XLA_FLAGS of each setting, beside whatever the caller set."""


def final_returns(seed: int, num_seeds: int, out: Path, xla_flags: str) -> list[float]:
    env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {xla_flags}".strip()}
    subprocess.run([sys.executable, "-m", "purejaxppo.run", "--env", "CartPole-v1", "--seed", str(seed),
                    "--num-seeds", str(num_seeds), "--quiet", "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL, env=env)
    return json.loads((out / "summary.json").read_text())["final_return_per_seed"]


def run_group(setting: str, at_a_time: int) -> dict:
    start, returns = time.perf_counter(), []
    with tempfile.TemporaryDirectory() as tmp:
        for first in range(0, SEEDS, at_a_time):
            returns += final_returns(first, at_a_time, Path(tmp) / str(first), SETTINGS[setting])
    return {"setting": setting, "at_a_time": at_a_time, "returns": returns,
            "wall_s": round(time.perf_counter() - start, 1)}


def table(rows: list[dict]) -> list[str]:
    lines = ["| XLA CPU code | seeds per command | commands | mean | 95% CI | worst seed | seeds below 475 | wall s |",
             "|---|---:|---:|---:|---|---:|---:|---:|"]
    for row in rows:
        r = np.asarray(row["returns"], np.float64)
        half = 1.96 * r.std(ddof=1) / np.sqrt(len(r))
        below = ", ".join(f"seed {i}: {x:.0f}" for i, x in enumerate(r) if x < 475) or "none"
        lines.append(f"| {row['setting']} | {row['at_a_time']} | {SEEDS // row['at_a_time']} | {r.mean():.1f} | "
                     f"[{r.mean() - half:.1f}, {r.mean() + half:.1f}] | {r.min():.1f} | {below} | {row['wall_s']} |")
    return lines


def write_markdown(rows: list[dict], machine: str) -> None:
    lines = ["# CartPole-v1: the defaults on seeds 0-63, in commands of 64, 16, 4, 2 and 1 seeds", "",
             "`python experiments/cartpole_groupings.py`: `python -m purejaxppo.run --env CartPole-v1 --seed S "
             "--num-seeds N` with the CLI's defaults (2e5 env steps), seeds 0-63 in 64/N commands; the CLI places "
             "a command's seeds on its devices. Final return per seed: the mean return of the episodes that ended "
             "in the last 5% of updates. `sse4_2`: the same commands under `XLA_FLAGS=--xla_cpu_max_isa=SSE4_2`, "
             "other vector code and so other float rounding. Every seed per row: cartpole_groupings.json. Wall: the "
             "row's commands end to end, beside other training on the same cores.", "",
             f"Machine: {machine}.", "", *table(rows)]
    (HERE / "cartpole_groupings.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--groups", nargs="+", type=int, default=[64, 16, 4, 2, 1])
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent / "benchmarks"))
    from machine import cpu_model, isa_flags, versions  # noqa: E402  (the benchmarks' machine header)

    stored = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"rows": []}
    done = {(r["setting"], r["at_a_time"]) for r in stored["rows"]}
    mine = []  # the rows this command trained
    for setting in args.settings:
        for at_a_time in args.groups:
            if (setting, at_a_time) in done:
                continue
            mine.append(run_group(setting, at_a_time))
            print(table(mine[-1:])[-1], flush=True)
            # read again before writing: another command may have added a setting meanwhile
            stored = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"rows": []}
            keys = {(r["setting"], r["at_a_time"]) for r in mine}
            stored["rows"] = [r for r in stored["rows"] if (r["setting"], r["at_a_time"]) not in keys] + mine
            stored["machine"] = (f"{cpu_model()}, {os.cpu_count()} cores (ISA {' '.join(isa_flags())}), "
                                 f"no accelerator; {versions()}; {time.strftime('%Y-%m-%d')}")
            RESULTS.write_text(json.dumps(stored, indent=1) + "\n")
    order = {s: i for i, s in enumerate(SETTINGS)}
    rows = sorted(stored["rows"], key=lambda r: (order[r["setting"]], -r["at_a_time"]))
    write_markdown(rows, stored.get("machine", "unknown"))


if __name__ == "__main__":
    main()
