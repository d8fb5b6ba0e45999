"""Runs the tuner on every env whose defaults it sets, each into experiments/tuning/<env>/ (its command in
command.txt, the tuner's outputs beside it: ranked.md, best.json, trials.csv, scores.png, tune.json).

    python experiments/tune_all.py [--envs CartPole-v1 Acrobot-v1 ...]

Envs run one after another (a tuner uses every core); one that finished is skipped, one that was stopped is
resumed. `ENV_DEFAULTS` (purejaxppo/core/defaults.py) takes each env's best.json, less what equals the class
defaults.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent / "tuning"

# env -> (env steps per trial: the budget the defaults are held to, the search beyond the default numeric space)
SEARCHES: dict[str, tuple[int, list[str]]] = {
    # 4 search seeds and 3 confirmed on 8 left 4 of seeds 0-63 below 475 (experiments/tuning/first-attempts/):
    # scored on 16 seeds, the best 8 confirmed on 64.
    "CartPole-v1": (200_000, ["--param", "num_envs=4,8,16", "--param", "update_epochs=4,10", "--num-seeds", "16",
                              "--confirm", "8", "--confirm-seeds", "64"]),
    "Acrobot-v1": (500_000, ["--param", "num_envs=8,16,32", "--param", "update_epochs=4,10"]),
    "Pendulum-v1": (1_000_000, ["--param", "num_envs=16,32", "--param", "update_epochs=10,20",
                                "--param", "gamma=lin:0.9:0.99"]),
    # rl-baselines3-zoo's PPO (-110 at 1M) normalizes and takes many short rollouts: 16 envs x 16 steps.
    "MountainCar-v0": (500_000, ["--normalize-obs", "--param", "normalize_reward=true,false",
                                 "--param", "num_steps=16,64", "--param", "num_envs=16,64"]),
    # 4 search seeds and 8 confirming ones chose settings that stalled 2 (Catch) and 1 (UmbrellaChain) of seeds
    # 0-15 at about half the return: these searches score each trial on 16 seeds and confirm on 32.
    "Catch-bsuite": (150_000, ["--param", "num_envs=4,16", "--num-seeds", "16", "--confirm-seeds", "32"]),
    "UmbrellaChain-bsuite": (150_000, ["--param", "num_envs=4,16", "--num-seeds", "16", "--confirm-seeds", "32"]),
    "DiscountingChain-bsuite": (150_000, ["--param", "num_envs=4,16"]),
    "MemoryChain-bsuite": (150_000, ["--param", "num_envs=16,32"]),
    # The misc envs: recurrent or not and normalized observations or not were chosen by hand first
    # (experiments/tuning/probes.md); these small searches set the learning rate and normalization.
    "MetaMaze-misc": (500_000, ["--trials", "16", "--only", "--param", "lr=log:2.5e-4:5e-3",
                                "--param", "normalize_obs=true,false"]),
    "PointRobot-misc": (500_000, ["--recurrent", "--num-envs", "16", "--num-minibatches", "4", "--trials", "16",
                                  "--only", "--param", "lr=log:2.5e-4:5e-3", "--param", "normalize_obs=true,false"]),
    "BernoulliBandit-misc": (500_000, ["--recurrent", "--num-envs", "16", "--num-minibatches", "4", "--trials",
                                       "16", "--only", "--param", "lr=log:2.5e-4:5e-3",
                                       "--param", "normalize_obs=true,false"]),
    # A whole MinAtar run is 1e7 steps, ~2.5 CPU-minutes per seed here: the search trains a tenth of it (its
    # schedule scaled), and the best 8 are confirmed whole, which also measures how well the short runs ranked them.
    **{f"{game}-MinAtar": (10_000_000, ["--search-fraction", "0.1", "--rungs", "1", "--trials", "16", "--num-seeds",
                                        "2", "--confirm", "8", "--confirm-seeds", "2"])
       for game in ("Asterix", "Breakout", "Freeway", "SpaceInvaders", "Seaquest")},
}


def defaults_entry(env: str) -> str:
    """The `ENV_DEFAULTS` entry of `env`'s best.json: the fields that differ from the class defaults, floats to 4
    significant digits."""
    from purejaxppo import PPOConfig

    base, best = PPOConfig().to_dict(), json.loads((HERE / env / "best.json").read_text())
    fields = {k: v for k, v in best.items() if k != "env" and base[k] != v}
    shown = ", ".join(f"{k}={float(f'{v:.4g}')!r}" if isinstance(v, float) else f"{k}={v!r}"
                      for k, v in fields.items())
    return f'"{env}": dict({shown}),  # experiments/tuning/{env}'


def counts(search: list[str], trials: int) -> list[str]:
    """`trials` trials of 4 search seeds each, unless the env's search says otherwise."""
    return ([] if "--trials" in search else ["--trials", str(trials)]) + (
        [] if "--num-seeds" in search else ["--num-seeds", "4"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=list(SEARCHES), choices=list(SEARCHES))
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--print-defaults", action="store_true", help="print the ENV_DEFAULTS entries, tune nothing")
    args = parser.parse_args()
    if args.print_defaults:
        for env in args.envs:
            if (HERE / env / "best.json").is_file():
                print(defaults_entry(env))
        return
    for env in args.envs:
        out = HERE / env
        if (out / "tune.json").is_file():
            print(f"{env}: done", flush=True)
            continue
        budget, search = SEARCHES[env]
        if (out / "tune_state.json").is_file():
            command = [sys.executable, "-m", "purejaxppo.tune", "--resume", str(out), "--quiet"]
        else:
            command = [sys.executable, "-m", "purejaxppo.tune", "--env", env, "--total-timesteps", str(budget),
                       *counts(search, args.trials), *search, "--out", str(out), "--quiet"]
        print(f"{env}: {' '.join(command[1:])}", flush=True)
        subprocess.run(command, check=True)
        shown = ["python", "-m", "purejaxppo.tune", "--env", env, "--total-timesteps", str(budget),
                 *counts(search, args.trials), *search, "--out", f"experiments/tuning/{env}"]
        (out / "command.txt").write_text(" ".join(shown) + "\n")
        print(json.loads((out / "tune.json").read_text())["best"], flush=True)


if __name__ == "__main__":
    main()
