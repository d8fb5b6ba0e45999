"""Statistics over runs: final returns, confidence intervals, smoothed curves (numpy, on the host). How they are
written as text is `purejaxppo.io.text`'s."""

from __future__ import annotations

import math

import numpy as np


def final_returns(episode_return: np.ndarray, fraction: float = 0.05) -> np.ndarray:
    """Per run, the mean episode return over the last `fraction` of updates (at least one update).

    `episode_return` is `[..., num_updates]`; updates in which no episode ended (NaN) are skipped.
    """
    last = max(1, math.ceil(episode_return.shape[-1] * fraction))
    tail = episode_return[..., -last:]
    counts = np.sum(~np.isnan(tail), axis=-1)
    sums = np.nansum(tail, axis=-1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def mean_ci95(samples: np.ndarray) -> tuple[float, float, float]:
    """Mean of the finite samples and its two-sided 95% Student-t confidence interval (NaN where undefined)."""
    x = np.asarray(samples, np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size == 1:
        return mean, math.nan, math.nan
    import scipy.stats  # here: a single run never needs it, and the import is slow (benchmarks/README.md)

    half = float(scipy.stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, mean - half, mean + half


def smooth(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average along the last axis over up to `window` values, skipping NaNs (NaN where a
    window holds none)."""
    valid = ~np.isnan(x)
    sums = np.cumsum(np.where(valid, x, 0.0), axis=-1)
    counts = np.cumsum(valid, axis=-1)
    sums[..., window:] = sums[..., window:] - sums[..., :-window]
    counts[..., window:] = counts[..., window:] - counts[..., :-window]
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
