"""Successive halving of one structural group's trials, and the confirmation of the best on fresh seeds: the
steps a tuner (`purejaxppo.scale.tune`) is made of.

Every trial of a group trains to the first rung; the best `1/eta` of them, ranked by their mean return over the
search seeds, go on to the next rung, and so on to the full run. Each rung is one compiled, vmapped program over
the trials still in (fewer rows each rung), continued from the state the last rung left, so no trial is trained
past the rung where it was dropped.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

from purejaxppo.core.config import PPOConfig
from purejaxppo.scale.plan import SweepPlan, make_plan
from purejaxppo.scale.program import SweepState
from purejaxppo.scale.search import Trial, survivors
from purejaxppo.scale.stats import final_returns, mean_ci95
from purejaxppo.scale.sweep import Sweep

OnChunk = Callable[[str, int, int], None]
"""Called as training goes: (what is training, updates done, updates it trains to)."""


def _group(config: PPOConfig, trials: list[Trial]) -> tuple[PPOConfig, dict[str, list[float]] | None]:
    """The config of `trials` (one structural group) and their numeric values as a sweep's configurations."""
    names = [name for name, _ in trials[0].params]
    configurations = {name: [dict(t.params)[name] for t in trials] for name in names} if names else None
    if configurations is None and len(trials) > 1:
        raise ValueError("trials without numeric values differ only in structure: one per group")
    return dataclasses.replace(config, **dict(trials[0].structure)), configurations


def group_job(config: PPOConfig, trials: list[Trial], num_seeds: int, seed: int, env: Any = None) -> Sweep:
    """One program over `trials` (one structural group) and their seeds, on the search's one `env` (made once:
    `purejaxppo.core.envs.run_env`; made here if None)."""
    group_config, configurations = _group(config, trials)
    return Sweep(group_config, num_seeds, seed, configurations=configurations, env=env)


def train_to(job: Sweep, progress: SweepState, stop: int, label: str, on_chunk: OnChunk | None) -> SweepState:
    """`progress` advanced to update `stop`, reporting each chunk."""
    for advanced, _ in job.chunks(progress, stop):
        progress = advanced
        if on_chunk is not None:
            on_chunk(label, progress.done, stop)
    return progress


@dataclasses.dataclass
class GroupSearch:
    """Successive halving of one structural group's trials. `step` trains the next rung; between steps,
    `record()` (JSON) and `rows` (the surviving trials' rows on the host) are all there is to keep to resume."""

    config: PPOConfig
    trials: list[Trial]
    num_seeds: int
    seed: int
    eta: int
    rungs: list[int]  # the updates each rung trains to
    rung: int = 0  # the next rung to train
    alive: list[int] = None  # positions in `trials` still searched, in their rows' order
    scores: dict[int, list[float]] = None  # trial index -> its score at each rung it reached
    rows: SweepState | None = None  # the alive trials' rows after the last rung (host), None before the first
    program_cache: Path | None = None
    env: Any = None  # the search's env, made once

    def __post_init__(self):
        self.alive = list(range(len(self.trials))) if self.alive is None else self.alive
        self.scores = {t.index: [] for t in self.trials} if self.scores is None else self.scores

    @property
    def done(self) -> bool:
        return self.rung >= len(self.rungs)

    def job(self) -> Sweep:
        """The program of the next rung (the trials still in)."""
        return group_job(self.config, [self.trials[i] for i in self.alive], self.num_seeds, self.seed, self.env)

    def plan(self) -> SweepPlan:
        """The runs of the trials still in: what the next rung's program trains, without making it."""
        group_config, configurations = _group(self.config, [self.trials[i] for i in self.alive])
        return make_plan(group_config, self.num_seeds, self.seed, configurations, zipped=configurations is not None)

    def record(self) -> dict[str, Any]:
        """Where the search stands, as JSON: the next rung, the trials still in and every trial's scores."""
        return {"rung": self.rung, "alive": list(self.alive),
                "scores": {str(k): json_floats(v) for k, v in self.scores.items()}}

    def resume(self, record: dict[str, Any], restore: Callable[[SweepState, int], SweepState] | None) -> None:
        """Continues from `record`; unless the search is done, its rows come from `restore(template, updates)`,
        the rows saved after the last rung it records (`template`: their structure, shapes and dtypes)."""
        self.rung, self.alive = record["rung"], list(record["alive"])
        self.scores = {int(k): from_json_floats(v) for k, v in record["scores"].items()}
        if not self.done:
            if restore is None:
                raise ValueError("a search stopped between rungs resumes only from its rows' checkpoints")
            job = self.job()  # the rung the record holds, not a later one whose rows were saved before a kill
            self.rows = restore(job.to_host(job.init()), self.rungs[self.rung - 1])

    def step(self, on_chunk: OnChunk | None = None, label: str = "") -> None:
        """Trains the trials still in to the next rung, scores them, and keeps the best for the next."""
        job = self.job()
        job.compile(self.program_cache)
        progress = job.init() if self.rows is None else job.to_devices(self.rows)
        progress = train_to(job, progress, self.rungs[self.rung], label, on_chunk)
        host = job.to_host(progress)
        per_seed = final_returns(host.metrics["episode_return"][:, :host.done]).reshape(len(self.alive), -1)
        with np.errstate(all="ignore"):
            scores = [float(np.nanmean(s)) if np.isfinite(s).any() else float("nan") for s in per_seed]
        for position, score in zip(self.alive, scores):
            self.scores[self.trials[position].index].append(score)
        self.rung += 1
        if self.done:
            self.rows = None
            return
        keep = sorted(survivors(scores, self.eta))  # their order in the rows, kept as it was
        rows = np.concatenate([np.arange(k * self.num_seeds, (k + 1) * self.num_seeds) for k in keep])
        self.rows = jax.tree.map(lambda x: x[rows], host)
        self.alive = [self.alive[k] for k in keep]


@dataclasses.dataclass
class Scored:
    """A trial, its score at each rung it reached, and where confirmed, its final return on the fresh seeds."""

    trial: Trial
    rung_scores: list[float]
    confirmed: np.ndarray | None = None  # per confirmation seed

    @property
    def search_score(self) -> float:
        return self.rung_scores[-1] if self.rung_scores else float("nan")

    def confirmed_ci(self) -> tuple[float, float, float]:
        """The mean over the confirmation seeds and its 95% interval; NaN unless every seed returned a number: a
        mean over the seeds that did not diverge would rank a trial that diverges as one that learns."""
        if self.confirmed is None or not np.isfinite(self.confirmed).all():
            return (float("nan"),) * 3
        return mean_ci95(self.confirmed)

    def nan_seeds(self, first_seed: int) -> list[int]:
        """The confirmation seeds (from `first_seed`, in the order of `confirmed`) whose return is not finite."""
        if self.confirmed is None:
            return []
        return [first_seed + i for i, x in enumerate(self.confirmed) if not np.isfinite(x)]


def json_floats(values) -> list[float | None]:
    """`values` as JSON holds them: null for NaN and infinities, which JSON has no token for."""
    return [float(x) if np.isfinite(x) else None for x in values]


def from_json_floats(values) -> list[float]:
    """`json_floats` read back: NaN for null."""
    return [float("nan") if x is None else float(x) for x in values]


def rank(scored: list[Scored]) -> list[Scored]:
    """Best first: the furthest rung reached, then the score there (NaN last)."""
    key = lambda s: (-len(s.rung_scores), -s.search_score if np.isfinite(s.search_score) else np.inf)
    return sorted(scored, key=key)


def rank_correlation(ranked: list[Scored]) -> float:
    """Spearman's rank correlation between the search's order (`ranked`, best first) and the confirmed means, over
    the confirmed trials: 1 where the search ordered them as their whole runs on fresh seeds do (NaN for fewer than
    two, or where either side is all ties)."""
    pairs = [(-position, s.confirmed_ci()[0]) for position, s in enumerate(ranked)
             if s.confirmed is not None and np.isfinite(s.confirmed_ci()[0])]
    if len(pairs) < 2 or len({m for _, m in pairs}) < 2:
        return float("nan")
    import scipy.stats  # as in `stats.mean_ci95`: a slow import, only where a tuner reports

    return float(scipy.stats.spearmanr(*zip(*pairs)).statistic)


def confirm(config: PPOConfig, best: list[Scored], num_seeds: int, seed: int, on_chunk: OnChunk | None = None,
            program_cache: Path | None = None, env: Any = None) -> int:
    """Trains each of `best` again, whole, on `num_seeds` seeds from `seed` (seeds the search did not use), one
    program per structural group; sets their `confirmed` final returns. Returns the programs compiled."""
    compiles = 0
    groups: dict[tuple, list[Scored]] = {}
    for s in best:
        groups.setdefault(s.trial.structure, []).append(s)
    for group in groups.values():
        for one in ([group] if group[0].trial.params else [[s] for s in group]):
            job = group_job(config, [s.trial for s in one], num_seeds, seed, env)
            job.compile(program_cache)
            compiles += 1
            progress = train_to(job, job.init(), job.config.num_updates, "confirming", on_chunk)
            per_seed = final_returns(job.to_host(progress).metrics["episode_return"]).reshape(len(one), -1)
            for s, returns in zip(one, per_seed):
                s.confirmed = returns
    return compiles


def best_config(config: PPOConfig, scored: list[Scored]) -> tuple[PPOConfig, Scored]:
    """The confirmed trial with the best mean over the fresh seeds, as a whole config."""
    winner = max((s for s in scored if s.confirmed is not None),
                 key=lambda s: s.confirmed_ci()[0] if np.isfinite(s.confirmed_ci()[0]) else -np.inf)
    return dataclasses.replace(config, **dict(winner.trial.structure), **dict(winner.trial.params)), winner
