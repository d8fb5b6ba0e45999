"""What a run leaves on disk and prints: metrics.csv, learning_curve.png, summary.json and the ranked table."""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from purejaxppo.core.metrics import in_report_order
from purejaxppo.io.text import cell, ranked_table, steps_label
from purejaxppo.scale.files import dumps, replacing, write_file
from purejaxppo.scale.results import SweepResult
from purejaxppo.scale.stats import smooth


def write_metrics_csv(path: Path, result: SweepResult) -> None:
    """One row per configuration, seed and update (`metrics_rows`) under `metrics_header`."""
    with replacing(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(metrics_header(result))
        w.writerows(metrics_rows(result, 0, result.metrics["episode_return"].shape[-1]))


def metrics_header(result: SweepResult) -> list[str]:
    """metrics.csv's columns: `config, seed, update`, a column per swept hyperparameter, then every metric."""
    return ["config", "seed", "update", *result.hyperparams, *in_report_order(result.metrics)]


def metrics_rows(result: SweepResult, start: int, stop: int) -> Iterator[list[Any]]:
    """metrics.csv's rows of updates `start` to `stop - 1` (0-based; the file counts from 1), by configuration,
    then seed, then update."""
    names = in_report_order(result.metrics)
    num_configs, num_seeds = result.metrics["episode_return"].shape[:2]
    for c in range(num_configs):
        hyper = [cell(result.hyperparams[h][c]) for h in result.hyperparams]
        for s in range(num_seeds):
            for u in range(start, stop):
                yield [c, result.seeds[s], u + 1, *hyper, *(cell(result.metrics[n][c, s, u]) for n in names)]


def label(hyperparams: dict[str, Any]) -> str:
    """`lr=0.001 ent_coef=0.01`, or "" for a run with nothing swept."""
    return " ".join(f"{k}={v:g}" for k, v in hyperparams.items())


def plot_learning_curves(path: Path, result: SweepResult, title: str) -> None:
    """Return vs env steps, one curve per configuration: the mean over seeds, smoothed over 2% of the run, and
    with several seeds a band of +-1 standard deviation across them."""
    from matplotlib.figure import Figure  # not pyplot: no GUI backend to load, and the caller's stays as it is

    returns = result.metrics["episode_return"]  # [C, S, U]
    env_steps = result.metrics["env_steps"][0, 0]
    curves = smooth(returns, max(1, returns.shape[-1] // 50))
    fig = Figure(figsize=(7, 4.5), dpi=120)
    ax = fig.subplots()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # updates before any episode ended are all-NaN
        mean, std = np.nanmean(curves, axis=1), np.nanstd(curves, axis=1)
    seeds = returns.shape[1]
    for c in range(returns.shape[0]):
        name = label({k: v[c] for k, v in result.hyperparams.items()}) or "mean"
        shown = np.isfinite(mean[c])  # before the first episode ends there is no return to draw
        line, = ax.plot(env_steps[shown], mean[c][shown], label=f"{name} ({seeds} seed{'s' if seeds > 1 else ''})")
        if seeds > 1:
            ax.fill_between(env_steps[shown], (mean[c] - std[c])[shown], (mean[c] + std[c])[shown], alpha=0.2,
                            color=line.get_color())
    step_ticks(ax)
    ax.set_xlabel("env steps")
    ax.set_ylabel("episode return" + (" (band: ±1 std over seeds)" if seeds > 1 else ""))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    with replacing(path, "wb") as f:
        fig.savefig(f, format="png")


def step_ticks(ax: Any) -> None:
    """Env steps on `ax`'s x axis as 100k, 1M, at most 5 ticks (full numbers run into each other)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: steps_label(x)))


def summary(result: SweepResult, updates_trained: int | None = None, **extra: Any) -> dict[str, Any]:
    """summary.json: the best configuration's figures at the top level, every configuration ranked under
    "configs", timings, and `extra` (e.g. the device). Steps per second count the `updates_trained` updates
    that took `result.train_seconds` (default: all; fewer in a resumed run)."""
    configs = [_json_ready(entry) for entry in result.summary()]
    best = configs[0]
    num_configs, num_seeds, num_updates = result.metrics["env_steps"].shape
    updates = num_updates if updates_trained is None else updates_trained
    total_steps = num_configs * num_seeds * updates * result.config.batch_size
    return {
        "env": result.config.env,
        "total_timesteps": result.config.total_timesteps,
        "env_steps_per_seed": int(result.metrics["env_steps"][0, 0, -1]),
        "num_seeds": len(result.seeds),
        "seeds": result.seeds.tolist(),
        "num_configs": len(configs),
        "swept": list(result.hyperparams),
        "final_return": best["final_return"],
        "ci95": best["ci95"],
        "final_return_per_seed": best["final_return_per_seed"],
        "best_hyperparams": best["hyperparams"],
        "configs": configs,
        "compile_seconds": round(result.compile_seconds, 3),
        "train_seconds": round(result.train_seconds, 3),
        "steps_per_second": round(float(total_steps) / result.train_seconds, 1) if updates else None,
        **extra,
    }


def _json_ready(x: Any) -> Any:
    """NaN and infinities -> None (JSON has neither), floats rounded to 4 decimals, recursively."""
    if isinstance(x, dict):
        return {k: _json_ready(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_ready(v) for v in x]
    if isinstance(x, float):
        return None if not math.isfinite(x) else round(x, 4)
    return x


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """summary.json, written whole or not at all: a run folder with a summary has all its outputs."""
    write_file(path, dumps(summary, indent=2))


def configs_table(result: SweepResult) -> str:
    """The configurations ranked by mean final return, with 95% CI over seeds, as aligned text."""
    swept = list(result.hyperparams)
    rows = []
    for entry in result.summary():
        low, high = entry["ci95"]
        rows.append([*(f"{entry['hyperparams'][h]:g}" for h in swept), f"{entry['final_return']:.1f}",
                     "n/a" if math.isnan(low) else f"[{low:.1f}, {high:.1f}]",
                     " ".join(f"{r:.0f}" for r in entry["final_return_per_seed"])])
    return ranked_table([*swept, "final return", "95% CI", "per seed"], rows)
