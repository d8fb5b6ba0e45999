"""Regenerates experiments/suite_results.md: one learning result per env suite (issue 15), each the CLI's defaults
for that suite on 8 seeds (8-15: the suite defaults were chosen on seeds 0-1), beside a uniformly random policy,
and MinAtar Breakout with the CNN torso against the MLP at the same budget.

    python experiments/suite_results.py [--runs xminigrid navix ...] [--table-only]

Each run is one `python -m purejaxppo.run --env ENV --seed 8 --num-seeds 8 [flags]` command; results are kept in
experiments/suite_results.json as each finishes. Final return: per seed, the mean episode return over the last 5%
of updates; evaluation: per seed, 100 deterministic episodes of its final policy (Craftax 32); random: 256
episodes of uniformly random valid actions (the action mask honoured).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from reference_results import evaluations, num, train
from scipy import stats

HERE = Path(__file__).parent
STORE = HERE / "suite_results.json"
SEED, NUM_SEEDS = 8, 8
BREAKOUT_STEPS = "2000000"
# Craftax's episodes run to 10,000 steps: a deterministic policy that survives makes 100 of them per seed costly.
EVAL_EPISODES = {"craftax": 32}

# name -> (env id, extra CLI flags, what the run shows; published figure at the same budget where one exists)
RUNS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "xminigrid": ("xminigrid:MiniGrid-Empty-8x8", (), "solved: the optimum is 0.961 (11 steps)"),
    "navix": ("navix:Navix-Empty-8x8-v0", (), "solved: every episode reaches the goal (return 1)"),
    "jumanji": ("jumanji:Maze-v0", (), "above random"),
    "jumanji-snake": ("jumanji:Snake-v1", (), "not above random: uniformly random valid moves eat as much"),
    "craftax": ("craftax:Craftax-Classic-Symbolic-v1", (), "no published PPO figure at 2e6 (symbolic) found"),
    "breakout-mlp": ("Breakout-MinAtar", ("--total-timesteps", BREAKOUT_STEPS), "MLP torso"),
    "breakout-cnn": ("Breakout-MinAtar", ("--total-timesteps", BREAKOUT_STEPS, "--torso", "cnn"),
                     "CNN torso (not yet run: about an hour of both cores here)"),
}


def random_return(env_id: str, episodes: int = 256) -> float:
    """The mean return of `episodes` first episodes of uniformly random valid actions, through purejaxppo's own
    adapter of the env (so the mask and the time limit are those training sees)."""
    from purejaxppo.core.envs import make_env
    from purejaxppo.core.networks import distribution, policy_logits, split_mask

    env = make_env(env_id)
    spec = env.action_spec

    def episode(key):
        key_reset, key = jax.random.split(key)
        obs, state = env.reset(key_reset)

        def body(carry):
            obs, state, key, total, done, t = carry
            key, key_action, key_step = jax.random.split(key, 3)
            _, mask = split_mask(obs, spec.mask_size)
            action = distribution(policy_logits(jnp.zeros(spec.size), mask, spec)).sample(seed=key_action)
            obs, state, reward, terminated, truncated, _ = env.step(key_step, state, action)
            return obs, state, key, total + jnp.where(done, 0.0, reward), done | terminated | truncated, t + 1

        carry = jax.lax.while_loop(lambda c: ~c[4] & (c[5] < env.params.max_steps_in_episode), body,
                                   (obs, state, key, jnp.float32(0.0), jnp.bool_(False), jnp.int32(0)))
        return carry[3]

    return float(jax.jit(jax.vmap(episode))(jax.random.split(jax.random.key(12345), episodes)).mean())


def ci95(x: list[float]) -> tuple[float, float]:
    x = np.asarray(x, np.float64)
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return float(x.mean() - half), float(x.mean() + half)


def table(store: dict) -> str:
    lines = ["# Learning results per env suite", "",
             f"Machine: {store.get('_machine', '?')}. Seeds {SEED}-{SEED + NUM_SEEDS - 1} (the suite defaults "
             "were chosen on seeds 0-1). Final return: per seed, the mean episode return over the last 5% of "
             "updates; evaluation: 100 deterministic episodes of each seed's final policy (Craftax: 32); random: 256 "
             "episodes "
             "of uniformly random valid actions. Regenerate with `python experiments/suite_results.py`.", "",
             "| run | env | budget | final return mean [95% CI], worst seed | evaluation | random | wall | note |",
             "|---|---|---|---|---|---|---|---|"]
    for name, (env, flags, note) in RUNS.items():
        entry = store.get(name)
        if entry is None:
            lines.append(f"| {name} | {env} | | not run | | | | {note} |")
            continue
        # a seed whose last 5% of updates saw no episode end has no final return (None)
        final = [x for x in entry["summary"]["final_return_per_seed"] if x is not None]
        low, high = ci95(final)
        torso = " --torso cnn" if "--torso" in flags else ""
        lines.append(f"| {name} | {env}{torso} | {entry['summary']['total_timesteps']:.0e} | "
                     f"{num(np.mean(final))} [{num(low)}, {num(high)}], worst {num(min(final))} | "
                     f"{num(np.mean(entry['evaluation']))} | {num(entry['random_return'])} | "
                     f"{entry['wall_seconds'] / 60:.1f} min | {note} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--table-only", action="store_true", help="remake the table from the store")
    args = parser.parse_args()
    for name in [] if args.table_only else args.runs:
        env, flags, _ = RUNS[name]
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / name
            entry = train(env, NUM_SEEDS, out, ("--seed", str(SEED), *flags))
            entry["evaluation"] = evaluations(out, NUM_SEEDS, EVAL_EPISODES.get(name, 100))
        entry["random_return"] = random_return(env)
        entry["date"] = time.strftime("%Y-%m-%d")
        store = json.loads(STORE.read_text()) if STORE.is_file() else {}  # what another run stored meanwhile
        store[name] = entry
        store["_machine"] = f"{os.cpu_count()}-core {platform.machine()} CPU, no GPU, jax {jax.__version__}"
        STORE.write_text(json.dumps(store) + "\n")
        (HERE / "suite_results.md").write_text(table(store))
        print(name, entry["summary"]["final_return"], np.mean(entry["evaluation"]), entry["random_return"], flush=True)
    store = json.loads(STORE.read_text()) if STORE.is_file() else {}
    (HERE / "suite_results.md").write_text(table(store))


if __name__ == "__main__":
    main()
