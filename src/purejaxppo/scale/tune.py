"""The tuner: trials drawn from a search space, trained by successive halving, the best few trained again on
seeds the search never used, and the winner named by those.

    result = tune(PPOConfig.for_env("Acrobot-v1"), num_trials=64, num_seeds=4,
                  space={"lr": Range(1e-4, 1e-2, log=True)})
    result.best_config            # the winner's whole config, its score from the fresh seeds alone

Successive halving: every trial of a structural group trains to the first rung (`num_updates / eta^(rungs-1)`
updates); the best `1/eta` of them, ranked by their mean return over the search seeds, go on to the next rung,
and so on to the full run. Each rung is one compiled, vmapped program over the trials still in (fewer rows each
rung), continued from the state the last rung left: a program is compiled per group and rung (`compiles`), and
no trial is trained past the rung where it was dropped.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

from purejaxppo.core.config import PPOConfig
from purejaxppo.scale.program import SweepState
from purejaxppo.scale.schedule import report_interval
from purejaxppo.scale.search import Choices, Range, Trial, check_space, rung_updates, sample_trials, survivors
from purejaxppo.scale.stats import final_returns, mean_ci95
from purejaxppo.scale.sweep import Sweep

Progress = Callable[[str, int, int], None]
"""Called as training goes: (what is training, updates done, updates it trains to)."""


def _job(config: PPOConfig, trials: list[Trial], num_seeds: int, seed: int, env: Any = None) -> Sweep:
    """One program over `trials` (one structural group) and their seeds, on the search's one `env` (made once:
    `purejaxppo.core.envs.run_env`; made here if None)."""
    names = [name for name, _ in trials[0].params]
    configurations = {name: [dict(t.params)[name] for t in trials] for name in names} if names else None
    if configurations is None and len(trials) > 1:
        raise ValueError("trials without numeric values differ only in structure: one per group")
    return Sweep(dataclasses.replace(config, **dict(trials[0].structure)), num_seeds, seed,
                 configurations=configurations, env=env)


def _train(job: Sweep, progress: SweepState, stop: int, label: str, on_chunk: Progress | None) -> SweepState:
    """`progress` advanced to update `stop`, in chunks of about half a second, reporting each."""
    chunk = report_interval(None, job.config.num_updates)
    while progress.done < stop:
        start, before = time.perf_counter(), progress.done
        progress = job.advance(progress, min(chunk, stop - before))
        jax.block_until_ready(progress.metrics)
        chunk = report_interval((time.perf_counter() - start) / (progress.done - before), job.config.num_updates)
        if on_chunk is not None:
            on_chunk(label, progress.done, stop)
    return progress


@dataclasses.dataclass
class GroupSearch:
    """Successive halving of one structural group's trials. `step` trains the next rung; between steps,
    `state` (the surviving trials' rows on the host) and the scores are all there is to save to resume."""

    config: PPOConfig
    trials: list[Trial]
    num_seeds: int
    seed: int
    eta: int
    rungs: list[int]  # the updates each rung trains to
    rung: int = 0  # the next rung to train
    alive: list[int] = None  # positions in `trials` still searched, in their rows' order
    scores: dict[int, list[float]] = None  # trial index -> its score at each rung it reached
    state: SweepState | None = None  # the alive trials' rows after the last rung (host), None before the first
    compiles: int = 0
    program_cache: Path | None = None
    env: Any = None  # the search's env, made once (`_job`)

    def __post_init__(self):
        self.alive = list(range(len(self.trials))) if self.alive is None else self.alive
        self.scores = {t.index: [] for t in self.trials} if self.scores is None else self.scores

    @property
    def done(self) -> bool:
        return self.rung >= len(self.rungs)

    def job(self) -> Sweep:
        """The program of the next rung (the trials still in)."""
        return _job(self.config, [self.trials[i] for i in self.alive], self.num_seeds, self.seed, self.env)

    def step(self, on_chunk: Progress | None = None, label: str = "") -> None:
        """Trains the trials still in to the next rung, scores them, and keeps the best for the next."""
        job = self.job()
        job.compile(self.program_cache)
        self.compiles += 1
        progress = job.init() if self.state is None else job.to_devices(self.state)
        progress = _train(job, progress, self.rungs[self.rung], label, on_chunk)
        host = job.to_host(progress)
        per_seed = final_returns(host.metrics["episode_return"][:, :host.done]).reshape(len(self.alive), -1)
        with np.errstate(all="ignore"):
            scores = [float(np.nanmean(s)) if np.isfinite(s).any() else float("nan") for s in per_seed]
        for position, score in zip(self.alive, scores):
            self.scores[self.trials[position].index].append(score)
        self.rung += 1
        if self.done:
            self.state = None
            return
        keep = sorted(survivors(scores, self.eta))  # their order in the rows, kept as it was
        rows = np.concatenate([np.arange(k * self.num_seeds, (k + 1) * self.num_seeds) for k in keep])
        self.state = jax.tree.map(lambda x: x[rows], host)
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
        return mean_ci95(self.confirmed) if self.confirmed is not None else (float("nan"),) * 3


def rank(scored: list[Scored]) -> list[Scored]:
    """Best first: the furthest rung reached, then the score there (NaN last)."""
    key = lambda s: (-len(s.rung_scores), -s.search_score if np.isfinite(s.search_score) else np.inf)
    return sorted(scored, key=key)


def confirm(config: PPOConfig, best: list[Scored], num_seeds: int, seed: int, on_chunk: Progress | None = None,
            program_cache: Path | None = None, env: Any = None) -> int:
    """Trains each of `best` again, whole, on `num_seeds` seeds from `seed` (seeds the search did not use), one
    program per structural group; sets their `confirmed` final returns. Returns the programs compiled. `env`: as
    `_job` takes it."""
    compiles = 0
    groups: dict[tuple, list[Scored]] = {}
    for s in best:
        groups.setdefault(s.trial.structure, []).append(s)
    for group in groups.values():
        for one in ([group] if group[0].trial.params else [[s] for s in group]):
            job = _job(config, [s.trial for s in one], num_seeds, seed, env)
            job.compile(program_cache)
            compiles += 1
            progress = _train(job, job.init(), job.config.num_updates, "confirming", on_chunk)
            per_seed = final_returns(job.to_host(progress).metrics["episode_return"]).reshape(len(one), -1)
            for s, returns in zip(one, per_seed):
                s.confirmed = returns
    return compiles


def best_config(config: PPOConfig, scored: list[Scored]) -> tuple[PPOConfig, Scored]:
    """The confirmed trial with the best mean over the fresh seeds, as a whole config."""
    winner = max((s for s in scored if s.confirmed is not None),
                 key=lambda s: s.confirmed_ci()[0] if np.isfinite(s.confirmed_ci()[0]) else -np.inf)
    return dataclasses.replace(config, **dict(winner.trial.structure), **dict(winner.trial.params)), winner


@dataclasses.dataclass
class TuneResult:
    scored: list[Scored]  # every trial, ranked by the search
    best_config: PPOConfig  # the winner, by its confirmed score
    best: Scored
    compiles: int  # programs compiled: one per structural group and rung, and per confirmation group


def tune(config: PPOConfig, num_trials: int, num_seeds: int = 4, space: dict[str, Range | Choices] | None = None,
         rungs: int = 3, eta: int = 3, confirm_top: int = 3, confirm_seeds: int = 8, seed: int = 1000,
         on_chunk: Progress | None = None, env: Any = None) -> TuneResult:
    """Searches `space` (default `purejaxppo.scale.search.DEFAULT_SPACE`) around `config` with `num_trials`
    trials of `num_seeds` seeds each (seeds from `seed`), by successive halving over `rungs` rungs keeping the
    best `1/eta` at each, then trains the best `confirm_top` again on `confirm_seeds` fresh seeds (from `seed +
    num_seeds`) and names the winner by those. Seeds below `seed` (0-999 by default, where reported results
    train) are never used. `env`: your own env, as in `make_train`."""
    from purejaxppo.core.envs import run_env
    from purejaxppo.scale.search import DEFAULT_SPACE

    env = run_env(config.env, config.env_kwargs, env)  # one env for every group, rung and confirmation
    space = DEFAULT_SPACE if space is None else space
    check_space(config, space)
    trials = sample_trials(space, num_trials, seed)
    groups: dict[tuple, list[Trial]] = {}
    for t in trials:
        groups.setdefault(t.structure, []).append(t)
    scored, compiles = [], 0
    for g, (structure, members) in enumerate(groups.items()):
        group_config = dataclasses.replace(config, **dict(structure))
        search = GroupSearch(config, members, num_seeds, seed, eta, rung_updates(group_config.num_updates, rungs,
                                                                                   eta), env=env)
        while not search.done:
            search.step(on_chunk, f"group {g + 1}/{len(groups)}, rung {search.rung + 1}/{len(search.rungs)}")
        compiles += search.compiles
        scored += [Scored(t, search.scores[t.index]) for t in members]
    ranked = rank(scored)
    compiles += confirm(config, ranked[:confirm_top], confirm_seeds, seed + num_seeds, on_chunk, env=env)
    best, winner = best_config(config, ranked)
    return TuneResult(ranked, best, winner, compiles)
