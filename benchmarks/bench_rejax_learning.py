"""purejaxppo and rejax's PPO, each at its own defaults, on the same envs, budgets and seeds (0-7): what each
learns, and in how much wall time.

    python benchmarks/bench_rejax_learning.py [--rows breakout asterix craftax jumanji navix] [--seeds 8]
        [--out DIR] [--scale F]
    make bench-rejax-learning ARGS="--out /somewhere/outside/the/tree"

Where bench_rejax.py matches the work (the same sizes, rates and coefficients in both), this one compares what a
user gets from each library as it ships: purejaxppo's CLI defaults for the env (`python -m purejaxppo.run --env
ENV --num-seeds 8`, its tuned defaults), and rejax's own settings for it (the config its repository ships for the
env where there is one, else its `PPO` class defaults). Only the budget and the seeds are set alike.

Each library's run is one unit: a process of its own, all seeds in one program (purejaxppo's split over a CPU
device per core, as its CLI does; rejax's `jax.vmap` on one device, as its README shows), its result kept in
`DIR/<library>-<row>.json`. A unit already there is not run again, and purejaxppo's run resumes from its last
checkpoint (`--auto-resume`), so a benchmark stopped part way continues where it was when given again.

Final return, alike for both: each seed's final policy, 128 episodes with sampled actions, averaged (rejax's own
evaluation at the end of training; purejaxppo's `evaluate` with `deterministic=False`, each on its library's make
of the env, within the env's own time limit); over seeds, the mean, its 95% Student-t interval and the worst
seed. Wall: the training command or program, compile included. `--scale` multiplies every budget (a quick try).
A row rejax cannot run says so, with its exit status (its error is on stderr above the table).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

EVAL_EPISODES = 128

# rejax's repository: benchmark/breakout_1m.yaml (its MinAtar setting; rejax ships none for Asterix) and
# configs/navix/empty_random_8x8.yaml, read at github.com/keraJLi/rejax; Craftax and Jumanji: the class defaults.
REJAX_MINATAR = dict(agent_kwargs=dict(activation="tanh"), num_envs=32, num_steps=32, num_epochs=4,
                     num_minibatches=4, learning_rate=0.00025674088686342003, max_grad_norm=1, gamma=0.995,
                     gae_lambda=0.95, clip_eps=0.2, ent_coef=0.01, vf_coef=0.5)
REJAX_NAVIX_EMPTY_RANDOM_8X8 = dict(agent_kwargs=dict(activation="swish"), num_envs=64, num_steps=128,
                                    num_epochs=8, num_minibatches=1, learning_rate=0.0003, max_grad_norm=10,
                                    gamma=0.99, gae_lambda=0.8, clip_eps=0.2, ent_coef=0.01, vf_coef=0.5,
                                    normalize_observations=True)


@dataclasses.dataclass(frozen=True)
class Row:
    ours: str  # purejaxppo's env id
    theirs: str  # rejax's (`rejax.compat.create`'s "suite/name")
    budget: int  # env steps per seed
    rejax: dict[str, Any]  # rejax's own settings for the env


ROWS = {
    "breakout": Row("Breakout-MinAtar", "Breakout-MinAtar", 10_000_000, REJAX_MINATAR),
    "asterix": Row("Asterix-MinAtar", "Asterix-MinAtar", 10_000_000, REJAX_MINATAR),
    "craftax": Row("craftax:Craftax-Classic-Symbolic-v1", "craftax/Craftax-Classic-Symbolic-v1", 2_000_000, {}),
    "jumanji": Row("jumanji:Maze-v0", "jumanji/Maze-v0", 1_000_000, {}),
    "navix": Row("navix:Navix-Empty-Random-8x8-v0", "navix/Navix-Empty-Random-8x8-v0", 1_048_576,
                 REJAX_NAVIX_EMPTY_RANDOM_8X8),
}


def rejax_algo(row: Row, budget: int):
    """rejax's PPO on the row's env at its own settings, evaluated only at the end (`eval_freq` = the budget)."""
    from rejax import PPO

    env: Any = {"env": row.theirs}
    if "/" not in row.theirs:  # a gymnax id: rejax 0.1.3 unpacks gymnax's old 5-value step
        import gymnax

        sys.path.insert(0, str(Path(__file__).parent))
        from bench_rejax import FiveTupleStep

        made, params = gymnax.make(row.theirs)
        env = {"env": FiveTupleStep(made), "env_params": params}
    return PPO.create(**env, total_timesteps=budget, eval_freq=budget, skip_initial_evaluation=True,
                      **json.loads(json.dumps(row.rejax)))  # a copy: create pops from its kwargs


def run_rejax(row: Row, budget: int, seeds: int) -> dict[str, Any]:
    """rejax's unit, in this process: its seeds vmapped under one jit; each seed's last evaluation."""
    import jax

    algo = rejax_algo(row, budget)
    keys = jax.vmap(jax.random.PRNGKey)(np.arange(seeds))
    start = time.perf_counter()
    _, (_, returns) = jax.block_until_ready(jax.jit(jax.vmap(algo.train))(keys))
    wall = time.perf_counter() - start
    per_seed = np.asarray(returns).reshape(seeds, -1, EVAL_EPISODES)[:, -1].mean(axis=-1)
    return {"per_seed": per_seed.tolist(), "wall_seconds": wall}


def run_purejaxppo(row: Row, budget: int, seeds: int, out: Path) -> dict[str, Any]:
    """purejaxppo's unit: its CLI at the env's defaults in a process of its own (resumed where a run was cut
    off), then each seed's final policy evaluated as rejax evaluates its own."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "purejaxppo.run", "--env", row.ours, "--num-seeds", str(seeds),
                    "--total-timesteps", str(budget), "--quiet", "--out", str(out), "--auto-resume"], check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    return {"per_seed": evaluate_purejaxppo(out, seeds), "wall_seconds": wall,
            "summary": json.loads((out / "summary.json").read_text())}


def evaluate_purejaxppo(out: Path, seeds: int) -> list[float]:
    """Each seed's final policy: the mean return of 128 episodes with sampled actions, as rejax scores its own."""
    from purejaxppo import evaluate, load_policy

    return [float(evaluate(load_policy(out, run), EVAL_EPISODES, seed=1000 + run, deterministic=False).mean())
            for run in range(seeds)]


def run_unit(library: str, name: str, seeds: int, scale: float, out: Path) -> dict[str, Any]:
    """One library's run of one row, in a process of its own; kept in `out`, and read from there if it is."""
    path = out / f"{library}-{name}.json"
    if path.is_file():
        return json.loads(path.read_text())
    proc = subprocess.run([sys.executable, __file__, "--unit", library, name, "--seeds", str(seeds), "--scale",
                           str(scale), "--out", str(out)], env={**os.environ, "JAX_ENABLE_COMPILATION_CACHE": "false"},
                          stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:  # not kept: a library that cannot run the env is asked again next time
        sys.stderr.write(proc.stderr[-4000:])
        errors = [line for line in proc.stderr.splitlines() if re.match(r"^[\w.]+(Error|Exception)\b", line)]
        return {"error": (errors[-1] if errors else f"exit status {proc.returncode}")[:160]}
    return json.loads(path.read_text())


def unit(library: str, name: str, seeds: int, scale: float, out: Path) -> None:
    """The body of `run_unit`'s process: trains, evaluates, and writes the unit's JSON."""
    row = ROWS[name]
    budget = int(row.budget * scale)
    if library == "rejax":
        result = run_rejax(row, budget, seeds)
    else:
        from purejaxppo.scale.compilation import use_cpu_cores

        use_cpu_cores()
        result = run_purejaxppo(row, budget, seeds, out / f"purejaxppo-{name}")
    result.update(env=row.ours, budget=budget, seeds=list(range(seeds)), date=time.strftime("%Y-%m-%d"))
    (out / f"{library}-{name}.json").write_text(json.dumps(result, indent=1) + "\n")


def cell(result: dict[str, Any]) -> list[str]:
    """final return mean, [95% CI], worst seed, wall s; or what went wrong."""
    if "error" in result:
        return [f"cannot run it: {result['error']}", "", "", ""]
    import scipy.stats

    x = np.asarray(result["per_seed"], float)
    half = scipy.stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else np.nan
    return [f"{x.mean():.2f}", f"[{x.mean() - half:.2f}, {x.mean() + half:.2f}]", f"{x.min():.2f}",
            f"{result['wall_seconds']:.0f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every budget (e.g. 0.01 to try it)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-rejax-learning"))
    parser.add_argument("--unit", nargs=2, metavar=("LIBRARY", "ROW"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.unit:
        return unit(*args.unit, args.seeds, args.scale, args.out)
    sys.path.insert(0, str(Path(__file__).parent))
    from machine import header

    print(header())
    print("| env | budget | library | final return | 95% CI | worst seed | wall s |")
    print("|---|---:|---|---:|---|---:|---:|")
    for name in args.rows:
        for library in ("purejaxppo", "rejax"):
            result = run_unit(library, name, args.seeds, args.scale, args.out)
            budget = f"{int(ROWS[name].budget * args.scale):,}"
            print(f"| {ROWS[name].ours} | {budget} | {library} | " + " | ".join(cell(result)) + " |", flush=True)


if __name__ == "__main__":
    main()
