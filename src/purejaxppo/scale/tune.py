"""The tuner: trials drawn from a search space, trained by successive halving, the best few trained again on
seeds the search never used, and the winner named by those.

    result = tune(PPOConfig.for_env("Acrobot-v1"), num_trials=64, num_seeds=4,
                  space={"lr": Range(1e-4, 1e-2, log=True)})
    result.best_config            # the winner's whole config, its score from the fresh seeds alone

Successive halving (`purejaxppo.scale.halving`): every trial of a structural group trains to the first rung
(`num_updates / eta^(rungs-1)` updates); the best `1/eta` of them, ranked by their mean return over the search
seeds, go on to the next rung, and so on to the full run. Each rung is one compiled, vmapped program over the
trials still in, continued from the state the last rung left: a program is compiled per group and rung
(`compiles`), and no trial is trained past the rung where it was dropped.

Multi-fidelity (`search_fraction` < 1): where a whole run is too long to search with, the search trains each trial
for a fraction of the budget, as a run of its own (the learning rate anneals over the short run), and only the
confirmation trains the whole budget. `TuneResult.rank_correlation` reports how well the short runs ranked the long
ones: Spearman's rho between the search's order and the confirmed means (confirm 8 or more to read it).

`Tuner` is the one driver, of `tune` and of `python -m purejaxppo.tune` alike, and it resumes: its `state`
(JSON: a score or return that is not finite is null) records where each group stands, the confirmed returns, the
programs compiled and the seconds trained. `on_save` gets it after every rung and after the confirmation; a group
stopped between rungs continues from the rows `checkpoints` kept (the command keeps them in its folder:
`purejaxppo.io.tune_state`). A tuner made again from the same plan and a saved state goes on to the result the
uninterrupted one would have reached.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from purejaxppo.core.config import PPOConfig
from purejaxppo.scale.halving import (
    GroupSearch,
    OnChunk,
    Scored,
    best_config,
    confirm,
    from_json_floats,
    json_floats,
    rank,
    rank_correlation,
)
from purejaxppo.scale.plan import SweepPlan
from purejaxppo.scale.program import SweepState
from purejaxppo.scale.search import Choices, Range, Trial, check_space, rung_updates, sample_trials


@dataclasses.dataclass(frozen=True)
class SearchPlan:
    """Everything that decides a search: the same plan draws the same trials and trains them alike."""

    config: PPOConfig  # the base config the trials vary
    space: dict[str, Range | Choices]
    num_trials: int
    num_seeds: int = 4  # search seeds per trial, from `seed`
    rungs: int = 3
    eta: int = 3  # each rung keeps the best 1/eta
    confirm_top: int = 3  # the best trained again on `confirm_seeds` fresh seeds, from `seed + num_seeds`
    confirm_seeds: int = 8
    seed: int = 1000
    search_fraction: float = 1.0  # of the budget each trial trains in the search; the confirmation trains all of it


def short_config(config: PPOConfig, fraction: float) -> PPOConfig:
    """`config` with `fraction` of its env steps: the learning rate anneals over the shorter run, as in a run of
    that length, so a short trial is scored as its own whole run and not as the first part of a long one."""
    if not 0 < fraction <= 1:
        raise ValueError(f"search fraction {fraction} is invalid: must be in (0, 1]")
    if fraction == 1:
        return config
    steps = int(config.total_timesteps * fraction)
    if steps < config.batch_size:
        raise ValueError(f"search fraction {fraction} is too small: {steps} env steps are less than one batch "
                         f"(num_envs * num_steps = {config.batch_size}); use at least "
                         f"{config.batch_size / config.total_timesteps:.3g}")
    return dataclasses.replace(config, total_timesteps=steps)


class RungCheckpoints(Protocol):
    """Where a tuner keeps each group's rows between rungs, for a stopped search to resume from."""

    def save_rung(self, group: int, plan: SweepPlan, rows: SweepState) -> None:
        """Keeps `rows` (host arrays): the runs of `plan`, the trials still in after the rung at `rows.done`."""

    def restore_rung(self, group: int, template: SweepState, updates: int) -> SweepState:
        """The rows kept after `updates` updates, in the structure, shapes and dtypes of `template`."""


@dataclasses.dataclass
class TuneResult:
    scored: list[Scored]  # every trial, ranked by the search
    best_config: PPOConfig  # the winner, by its confirmed score
    best: Scored
    compiles: int  # programs compiled: one per structural group and rung, and per confirmation group
    train_seconds: float = 0.0  # spent compiling and training, over every session of a resumed tuner
    rank_correlation: float = float("nan")  # search order against confirmed means (`halving.rank_correlation`)


class Tuner:
    """The search `plan` describes, from `state` (a saved one, or None to start)."""

    def __init__(self, plan: SearchPlan, state: dict[str, Any] | None = None, on_chunk: OnChunk | None = None,
                 on_save: Callable[[dict[str, Any]], None] | None = None, checkpoints: RungCheckpoints | None = None,
                 program_cache: Path | None = None, env: Any = None):
        from purejaxppo.core.envs import run_env

        check_space(plan.config, plan.space)
        # made and checked once, for every group, rung and confirmation
        self.env = run_env(plan.config.env, plan.config.env_kwargs, env)
        self.plan, self.on_chunk, self.on_save, self.checkpoints = plan, on_chunk, on_save, checkpoints
        self.program_cache = program_cache
        self.trials = sample_trials(plan.space, plan.num_trials, plan.seed)
        self.groups: dict[tuple, list[Trial]] = {}
        for t in self.trials:
            self.groups.setdefault(t.structure, []).append(t)
        # checked per group: a structure may make the batch larger than the short budget
        self.search_config = short_config(plan.config, plan.search_fraction)
        self.rungs = {s: rung_updates(short_config(dataclasses.replace(plan.config, **dict(s)),
                                                   plan.search_fraction).num_updates, plan.rungs, plan.eta)
                      for s in self.groups}
        self.state = {"groups": {}, "confirmed": {}, "compiles": 0, "seconds": 0.0} if state is None else state

    @property
    def rung_stops(self) -> list[int]:
        """The updates at which some group's rung ends, ascending."""
        return sorted({u for stops in self.rungs.values() for u in stops})

    def check(self) -> None:
        """That a run of the base config can train on the env and fits in memory: before anything compiles."""
        from purejaxppo.core.train import make_trainer
        from purejaxppo.scale.memory import check_sweep_fits
        from purejaxppo.scale.program import place_runs

        check_sweep_fits(make_trainer(self.plan.config, env=self.env), self.plan.config, place_runs(1), 1)

    def run(self) -> TuneResult:
        """Searches every group, confirms the best, and names the winner."""
        for g in range(len(self.groups)):
            self.search_group(g)
        ranked = self.confirm()
        best, winner = best_config(self.plan.config, ranked)
        return TuneResult(ranked, best, winner, self.state["compiles"], self.state["seconds"],
                          rank_correlation(ranked))

    def search_group(self, g: int) -> None:
        """Trains group `g` rung by rung from where the state says it stands, saving after each."""
        plan, structure = self.plan, list(self.groups)[g]
        search = GroupSearch(self.search_config, self.groups[structure], plan.num_seeds, plan.seed, plan.eta,
                             self.rungs[structure], program_cache=self.program_cache, env=self.env)
        if str(g) in self.state["groups"]:
            restore = None if self.checkpoints is None else functools.partial(self.checkpoints.restore_rung, g)
            search.resume(self.state["groups"][str(g)], restore)
        while not search.done:
            start = time.perf_counter()
            search.step(self.on_chunk, f"group {g + 1}/{len(self.groups)}, rung {search.rung + 1}/{len(search.rungs)}")
            if search.rows is not None and self.checkpoints is not None:
                self.checkpoints.save_rung(g, search.plan(), search.rows)
            self.state["groups"][str(g)] = search.record()
            self.state["compiles"] += 1
            self.state["seconds"] += time.perf_counter() - start
            self._save()

    def ranked(self) -> list[Scored]:
        """Every trial with its scores so far, best first (`purejaxppo.scale.halving.rank`)."""
        scores = {int(k): v for group in self.state["groups"].values() for k, v in group["scores"].items()}
        return rank([Scored(t, from_json_floats(scores[t.index])) for t in self.trials])

    def confirm(self) -> list[Scored]:
        """`ranked()`, the best `confirm_top` with their returns on the fresh seeds: trained now, each group at
        once, unless the state has them already."""
        plan, confirmed = self.plan, self.state["confirmed"]
        ranked = self.ranked()
        best = ranked[:plan.confirm_top]
        todo = [s for s in best if str(s.trial.index) not in confirmed]
        if todo:
            start = time.perf_counter()
            self.state["compiles"] += confirm(plan.config, todo, plan.confirm_seeds, plan.seed + plan.num_seeds,
                                              self.on_chunk, self.program_cache, self.env)
            confirmed.update({str(s.trial.index): json_floats(s.confirmed) for s in todo})
            self.state["seconds"] += time.perf_counter() - start
            self._save()
        for s in best:
            s.confirmed = np.asarray(from_json_floats(confirmed[str(s.trial.index)]), np.float64)
        return ranked

    def _save(self) -> None:
        if self.on_save is not None:
            self.on_save(self.state)


def tune(config: PPOConfig, num_trials: int, num_seeds: int = 4, space: dict[str, Range | Choices] | None = None,
         rungs: int = 3, eta: int = 3, confirm_top: int = 3, confirm_seeds: int = 8, seed: int = 1000,
         on_chunk: OnChunk | None = None, env: Any = None, search_fraction: float = 1.0) -> TuneResult:
    """Searches `space` (default `purejaxppo.scale.search.DEFAULT_SPACE`) around `config` with `num_trials`
    trials of `num_seeds` seeds each (seeds from `seed`), by successive halving over `rungs` rungs keeping the
    best `1/eta` at each, then trains the best `confirm_top` again on `confirm_seeds` fresh seeds (from `seed +
    num_seeds`) and names the winner by those. With `search_fraction` below 1 the search is multi-fidelity: its
    trials train that fraction of the budget (their schedule scaled to it) and only the confirmation trains it all;
    `rank_correlation` says how well the short runs ordered the long ones. Seeds below `seed` (0-999 by default,
    where reported results train) are never used. `env`: your own env, as in `make_train`."""
    from purejaxppo.scale.search import DEFAULT_SPACE

    space = DEFAULT_SPACE if space is None else space
    plan = SearchPlan(config, space, num_trials, num_seeds, rungs, eta, confirm_top, confirm_seeds, seed,
                      search_fraction)
    return Tuner(plan, on_chunk=on_chunk, env=env).run()
