"""What a tuner leaves in its folder: every trial (trials.csv), the ranked table (ranked.md), the winner as a config
file `python -m purejaxppo.run --config best.json` trains as is, a figure of score against each hyperparameter
(scores.png), and a summary (tune.json). What it keeps to resume is `purejaxppo.io.tune_state`'s.

Each file replaces the one before whole, never written through a link (`purejaxppo.scale.files`), and the JSON
holds null, not the `NaN` no JSON reader takes, for a score or return that is not finite."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from purejaxppo.core.config import PPOConfig
from purejaxppo.io.text import cell, ranked_table
from purejaxppo.scale.files import dumps, replacing, write_file
from purejaxppo.scale.halving import Scored
from purejaxppo.scale.search import Range
from purejaxppo.scale.tune import Tuner, TuneResult

DIGITS = 6
"""Significant digits of the values and scores in trials.csv and ranked.md."""


def write_trials_csv(path: Path, scored: list[Scored], rungs: list[int]) -> None:
    """A row per trial: its index, its values, its score at each rung it reached, its confirmed mean."""
    names = [n for n, _ in scored[0].trial.structure + scored[0].trial.params]
    with replacing(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["trial", *names, *(f"score_at_update_{u}" for u in rungs), "confirmed_mean"])
        for s in sorted(scored, key=lambda s: s.trial.index):
            values = [v for _, v in s.trial.structure + s.trial.params]
            scores = s.rung_scores + [float("nan")] * (len(rungs) - len(s.rung_scores))
            writer.writerow([s.trial.index, *(cell(x, DIGITS) for x in values + scores),
                             cell(s.confirmed_ci()[0], DIGITS)])


def trials_table(scored: list[Scored], top: int = 10) -> str:
    """The confirmed trials first, best confirmed mean first (the first is the winner), then the rest of the
    search's best `top`, as a markdown table; "nan" for the mean of a trial some confirmation seed of which
    returned NaN (`nan_seeds_lines` names them)."""
    confirmed = sorted((s for s in scored if s.confirmed is not None),
                       key=lambda s: -s.confirmed_ci()[0] if np.isfinite(s.confirmed_ci()[0]) else np.inf)
    names = [n for n, _ in scored[0].trial.structure + scored[0].trial.params]
    rows = []
    for s in confirmed + [s for s in scored[:top] if s.confirmed is None]:
        mean, low, high = s.confirmed_ci()
        rows.append([str(s.trial.index), *(cell(v, DIGITS) for _, v in s.trial.structure + s.trial.params),
                     cell(s.search_score, DIGITS), _mean_cell(s, mean),
                     f"[{low:.1f}, {high:.1f}]" if np.isfinite(low) else "",
                     str(len(s.confirmed)) if s.confirmed is not None else ""])
    header = ["trial", *names, "search score", "confirmed mean", "95% CI", "seeds"]
    return ranked_table(header, rows, markdown=True, left=["95% CI"]) + "\n"


def _mean_cell(s: Scored, mean: float) -> str:
    if s.confirmed is None:
        return ""
    return f"{mean:.1f}" if math.isfinite(mean) else "nan"


def nan_seeds_lines(scored: list[Scored], first_seed: int) -> str:
    """A line per confirmed trial with a confirmation seed (from `first_seed`) that returned NaN: its mean is not
    finite, and it ranks below every trial whose seeds all returned a number."""
    lines = []
    for s in scored:
        seeds = s.nan_seeds(first_seed)
        if seeds:
            lines.append(f"trial {s.trial.index}: confirmation seed{'s' * (len(seeds) > 1)} "
                         f"{', '.join(map(str, seeds))} returned NaN (diverged, or no episode ended near the end "
                         f"of the run): its confirmed mean is nan, not the mean of the other seeds\n")
    return "".join(lines)


def finite_or_none(x: float) -> float | None:
    """`x`, or None (JSON's null) where it is NaN or infinite."""
    return float(x) if math.isfinite(x) else None


def write_best(path: Path, config: PPOConfig) -> None:
    """best.json: the winner's whole config, every field."""
    write_file(path, dumps(config.to_dict(), indent=2))


def plot_scores(path: Path, scored: list[Scored], space: dict[str, Any]) -> None:
    """Score (at the furthest rung each trial reached) against each searched numeric hyperparameter, one panel
    each; a marker's size grows with the rung reached."""
    from matplotlib.figure import Figure

    names = [n for n, _ in scored[0].trial.params]
    if not names:
        return
    fig = Figure(figsize=(3.2 * len(names), 3.0), dpi=110)
    axes = np.atleast_1d(fig.subplots(1, len(names), sharey=True))
    for ax, name in zip(axes, names):
        x = [dict(s.trial.params)[name] for s in scored]
        y = [s.search_score for s in scored]
        sizes = [12 * 2 ** len(s.rung_scores) for s in scored]
        ax.scatter(x, y, s=sizes, alpha=0.6)
        if isinstance(space.get(name), Range) and space[name].log:
            ax.set_xscale("log")
        ax.set_xlabel(name)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("search score (mean return)")
    fig.tight_layout()
    with replacing(path, "wb") as f:
        fig.savefig(f, format="png")


def write_outputs(out: Path, tuner: Tuner, result: TuneResult, spec: dict[str, Any]) -> str:
    """Every output of `tuner`'s `result` in `out`, `spec` (the search, as tune_state.json holds it) recorded in
    tune.json; returns the ranked table and what to read beside it, to print."""
    plan, ranked, winner = tuner.plan, result.scored, result.best
    write_trials_csv(out / "trials.csv", ranked, tuner.rung_stops)
    table = trials_table(ranked)
    write_file(out / "ranked.md", table)
    write_best(out / "best.json", result.best_config)
    plot_scores(out / "scores.png", ranked, plan.space)
    mean, low, high = winner.confirmed_ci()
    confirm_seed = plan.seed + plan.num_seeds
    nan_seeds = {str(s.trial.index): s.nan_seeds(confirm_seed) for s in ranked if s.nan_seeds(confirm_seed)}
    summary = {"env": plan.config.env, "trials": len(tuner.trials), "groups": len(tuner.groups),
               "programs_compiled": result.compiles, "train_seconds": round(result.train_seconds, 1),
               "search_seeds": [plan.seed, confirm_seed - 1],
               "confirm_seeds": [confirm_seed, confirm_seed + plan.confirm_seeds - 1],
               "search_timesteps": tuner.search_config.total_timesteps,
               "confirm_timesteps": plan.config.total_timesteps,
               "rank_correlation": {"spearman": finite_or_none(result.rank_correlation),
                                    "confirmed_trials": sum(s.confirmed is not None for s in ranked)},
               "best_trial": winner.trial.index, "best_confirmed_return": finite_or_none(mean),
               "best_ci95": [finite_or_none(low), finite_or_none(high)], "confirm_nan_seeds": nan_seeds,
               "best": dict(winner.trial.structure + winner.trial.params), "spec": spec}
    write_file(out / "tune.json", dumps(summary, indent=2, default=str))
    return (table + nan_seeds_lines(ranked, confirm_seed)
            + ordering_line(result, summary["rank_correlation"]["confirmed_trials"]))


def ordering_line(result: TuneResult, confirmed: int) -> str:
    """How well the search ordered the confirmed trials, as a line (empty with fewer than 3 confirmed)."""
    if confirmed < 3:
        return ""
    rho = result.rank_correlation
    return (f"search order against the confirmed means, {confirmed} trials: Spearman rho "
            f"{'undefined (ties)' if math.isnan(rho) else f'{rho:.2f}'}\n")
