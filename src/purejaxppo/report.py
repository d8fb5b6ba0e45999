"""What a run leaves on disk: metrics.csv, learning_curve.png and the numbers of summary.json."""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np


def final_returns(episode_return: np.ndarray, fraction: float = 0.05) -> np.ndarray:
    """Per seed, the mean episode return over the last `fraction` of updates (at least one update).

    `episode_return` is `[num_seeds, num_updates]`; updates in which no episode ended (NaN) are skipped.
    """
    last = max(1, math.ceil(episode_return.shape[-1] * fraction))
    tail = episode_return[..., -last:]
    counts = np.sum(~np.isnan(tail), axis=-1)
    sums = np.nansum(tail, axis=-1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def write_metrics_csv(path: Path, metrics: dict[str, np.ndarray], columns: dict[str, Any] | None = None) -> None:
    """One row per seed and update. `metrics` are `[num_seeds, num_updates]`; `columns` are constant columns
    (e.g. swept hyperparameters) written on every row."""
    columns = columns or {}
    names = list(metrics)
    num_seeds, num_updates = next(iter(metrics.values())).shape
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["seed", "update", *columns, *names])
        for s in range(num_seeds):
            for u in range(num_updates):
                w.writerow([s, u + 1, *columns.values(), *(_fmt(metrics[n][s, u]) for n in names)])


def _fmt(x: Any) -> str:
    x = x.item()
    return repr(x) if isinstance(x, float) else str(x)


def smooth(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average along the last axis over up to `window` values, skipping NaNs (NaN where a
    window holds none)."""
    valid = ~np.isnan(x)
    sums = np.cumsum(np.where(valid, x, 0.0), axis=-1)
    counts = np.cumsum(valid, axis=-1)
    sums[..., window:] = sums[..., window:] - sums[..., :-window]
    counts[..., window:] = counts[..., window:] - counts[..., :-window]
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def plot_learning_curve(path: Path, env_steps: np.ndarray, episode_return: np.ndarray, title: str) -> None:
    """Return vs env steps, smoothed over 2% of the run: the mean over seeds and, with several seeds, a band of
    +-1 standard deviation across them.

    `env_steps` is `[num_updates]`, `episode_return` `[num_seeds, num_updates]`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = smooth(episode_return, max(1, episode_return.shape[-1] // 50))
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # updates before any episode ended are all-NaN
        mean = np.nanmean(curves, axis=0)
        std = np.nanstd(curves, axis=0)
    seeds = episode_return.shape[0]
    ax.plot(env_steps, mean, label=f"mean over {seeds} seed{'s' if seeds > 1 else ''}")
    if seeds > 1:
        ax.fill_between(env_steps, mean - std, mean + std, alpha=0.25, label="± 1 std")
    ax.set_xlabel("env steps")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
