"""The command line: `python -m purejaxppo.run --env CartPole-v1 [--num-seeds N] [--<any config field> V]`.

Trains PPO with the env's tuned defaults (`PPOConfig.for_env`), all seeds in one compiled, vmapped program, and
writes config.json, metrics.csv, learning_curve.png and summary.json to `--out` (default runs/<env>-<time>/).
Bad input exits with status 2 and one line on stderr, before anything compiles or is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from purejaxppo.config import PPOConfig, field_docs
from purejaxppo.progress import Progress
from purejaxppo.report import final_returns, plot_learning_curve, write_metrics_csv
from purejaxppo.train import METRICS, make_train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m purejaxppo.run", description="Train PPO on a gymnax environment.")
    parser.add_argument("--env", default="CartPole-v1", help="gymnax env id (default CartPole-v1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first run; run i uses seed + i (default 0)")
    parser.add_argument("--num-seeds", type=int, default=1,
                        help="seeds trained at once in one vmapped program (default 1)")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default runs/<env>-<time>/)")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    config_args = parser.add_argument_group("PPO hyperparameters (default: the env's tuned value)")
    docs = field_docs()
    for f in dataclasses.fields(PPOConfig):
        if f.name == "env":
            continue
        kwargs: dict[str, Any] = dict(default=None, help=docs.get(f.name, ""), dest=f.name)
        if f.type in ("bool", bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif f.name == "hidden_sizes":
            kwargs.update(type=int, nargs="+", metavar="WIDTH")
        else:
            kwargs["type"] = {"int": int, "float": float, "str": str}[str(f.type)]
        config_args.add_argument("--" + f.name.replace("_", "-"), **kwargs)
    return parser


def config_from_args(args: argparse.Namespace) -> PPOConfig:
    """The env's defaults with every flag the user gave on top; raises ValueError for bad values."""
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(PPOConfig)
                 if f.name != "env" and getattr(args, f.name) is not None}
    return PPOConfig.for_env(args.env, **overrides)


def output_dir(out: Path | None, env: str) -> Path:
    """Where results go; refuses a directory that already holds files, so nothing saved is overwritten."""
    out = out or Path("runs") / f"{env}-{time.strftime('%Y%m%d-%H%M%S')}"
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"--out {out} already exists and is not empty; choose another directory")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.num_seeds < 1:
            raise ValueError(f"--num-seeds {args.num_seeds} is invalid: must be at least 1")
        config = config_from_args(args)
        out = output_dir(args.out, config.env)
        total_steps = config.num_updates * config.batch_size * args.num_seeds
        progress = Progress(total_steps, quiet=args.quiet)
        train = make_train(config, callback=progress)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    seeds = list(range(args.seed, args.seed + args.num_seeds))
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))  # run i is exactly the single run with seed + i
    print(f"PPO on {config.env}: {config.num_envs} envs x {config.num_steps} steps, {config.num_updates} updates, "
          f"{args.num_seeds} seed{'s' if args.num_seeds > 1 else ''} on {jax.devices()[0].platform}", flush=True)
    start = time.perf_counter()
    compiled = jax.jit(train).lower(keys).compile()
    compile_seconds = time.perf_counter() - start
    print(f"compiled in {compile_seconds:.1f} s", flush=True)
    progress.start_timer()
    output = jax.block_until_ready(compiled(keys))
    train_seconds = time.perf_counter() - progress.start
    progress.close()

    metrics = {k: np.asarray(output.metrics[k]) for k in METRICS}
    per_seed = final_returns(metrics["episode_return"])
    final = float(np.nanmean(per_seed)) if not np.all(np.isnan(per_seed)) else float("nan")
    summary = {
        "env": config.env,
        "total_timesteps": config.total_timesteps,
        "env_steps_per_seed": config.num_updates * config.batch_size,
        "num_seeds": args.num_seeds,
        "seeds": seeds,
        "final_return": _json_float(final),
        "final_return_per_seed": [_json_float(r) for r in per_seed],
        "compile_seconds": round(compile_seconds, 3),
        "train_seconds": round(train_seconds, 3),
        "steps_per_second": round(total_steps / train_seconds, 1),
        "device": str(jax.devices()[0]),
        "jax_version": jax.__version__,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({**config.to_dict(), "seeds": seeds}, indent=2) + "\n")
    write_metrics_csv(out / "metrics.csv", metrics)
    plot_learning_curve(out / "learning_curve.png", metrics["env_steps"][0], metrics["episode_return"],
                        f"PPO on {config.env}")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

    spread = f" ± {np.nanstd(per_seed):.1f} (std over seeds)" if args.num_seeds > 1 else ""
    print(f"final return {final:.1f}{spread}, mean of the last 5% of updates")
    print(f"train {train_seconds:.1f} s, {summary['steps_per_second']:,.0f} env steps/s; results in {out}/")
    return 0


def _json_float(x: float) -> float | None:
    return None if np.isnan(x) else round(float(x), 3)


if __name__ == "__main__":
    sys.exit(main())
