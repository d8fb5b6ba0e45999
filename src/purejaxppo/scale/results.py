"""`SweepResult`: the outcome of many runs on named axes (configuration, seed, update), on the host."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from purejaxppo.core.config import PPOConfig
from purejaxppo.scale.stats import final_returns, mean_ci95


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """The runs of a sweep, on named axes: configuration `[C]`, seed `[S]`, update `[U]`."""

    config: PPOConfig  # the base config the grid was applied to
    hyperparams: dict[str, np.ndarray]  # each swept field's value per configuration, [C]
    seeds: np.ndarray  # [S]; configuration c, seed s was trained with jax.random.key(seeds[s])
    metrics: dict[str, np.ndarray]  # [C, S, U]
    params: Any  # final network parameters, leaves [C, S, ...]
    compile_seconds: float = 0.0
    train_seconds: float = 0.0

    @property
    def num_configs(self) -> int:
        return next(iter(self.metrics.values())).shape[0]

    @property
    def final_returns(self) -> np.ndarray:
        """`[C, S]`: per run, the mean episode return over the last 5% of updates."""
        return final_returns(self.metrics["episode_return"])

    def config_at(self, c: int) -> PPOConfig:
        """The full config of configuration `c`."""
        return dataclasses.replace(self.config, **{k: float(v[c]) for k, v in self.hyperparams.items()})

    def summary(self) -> list[dict[str, Any]]:
        """One entry per configuration, ranked by mean final return (best first): its hyperparameters, the
        mean final return over seeds with a 95% t confidence interval, and the per-seed values."""
        rows = []
        for c, per_seed in enumerate(self.final_returns):
            mean, low, high = mean_ci95(per_seed)
            rows.append({"config": c, "hyperparams": {k: float(v[c]) for k, v in self.hyperparams.items()},
                         "final_return": mean, "ci95": [low, high], "final_return_per_seed": per_seed.tolist()})
        return sorted(rows, key=lambda r: np.inf if np.isnan(r["final_return"]) else -r["final_return"])
