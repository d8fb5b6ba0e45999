"""A tuner's search space and its trials.

A space maps config fields to a `Range` (numeric fields: sampled log-uniformly or uniformly) or `Choices`
(structural fields, or numeric ones given as a list). Trials are drawn quasi-randomly (a scrambled Halton
sequence, `scipy.stats.qmc`): each trial's numeric values are one point of it, so the trials cover the space
evenly. Structural choices make groups (their product): every group gets an equal share of the trials, and each
group's trials train together as one compiled program.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, Sequence

import numpy as np

from purejaxppo.core.config import NUMERIC_FIELDS, PPOConfig


@dataclasses.dataclass(frozen=True)
class Range:
    """Values between `low` and `high`, sampled uniformly on a log scale (`log`) or a linear one."""

    low: float
    high: float
    log: bool = False

    def at(self, u: np.ndarray) -> np.ndarray:
        """The values at quantiles `u` in [0, 1)."""
        if self.log:
            return np.exp(np.log(self.low) + u * (np.log(self.high) - np.log(self.low)))
        return self.low + u * (self.high - self.low)

    def __str__(self) -> str:
        return f"{'log' if self.log else 'lin'}:{self.low:g}:{self.high:g}"


@dataclasses.dataclass(frozen=True)
class Choices:
    """One of `values`, each as likely."""

    values: tuple[Any, ...]

    def __str__(self) -> str:
        return ",".join(map(_format, self.values))


DEFAULT_SPACE: dict[str, Range] = {
    "lr": Range(1e-4, 1e-2, log=True),
    "ent_coef": Range(1e-5, 1e-1, log=True),
    "gamma": Range(0.95, 0.999),
    "gae_lambda": Range(0.8, 0.99),
    "clip_eps": Range(0.1, 0.3),
    "vf_coef": Range(0.25, 1.0),
    "max_grad_norm": Range(0.3, 5.0, log=True),
}
"""What the tuner searches when not told otherwise: PPO's numeric hyperparameters over the ranges published PPO
configurations use. Structural fields are searched only when given (`--param num_envs=8,16,32`)."""

STRUCTURAL = ("num_envs", "num_steps", "update_epochs", "num_minibatches", "hidden_sizes", "activation", "torso",
              "shared_torso", "anneal_lr", "normalize_obs", "normalize_reward")
"""The structural fields a search may vary: each combination of their values is a program of its own."""


def _format(value: Any) -> str:
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _parse_value(name: str, text: str) -> Any:
    """One choice of `name`, from its text: a float, an int, a bool, a word, or hidden sizes as `64x64`."""
    text = text.strip()
    kind = {f.name: str(f.type) for f in dataclasses.fields(PPOConfig)}[name]
    if name == "hidden_sizes":
        return tuple(int(w) for w in text.split("x"))
    if kind == "int":
        return int(text)
    if kind in ("bool",):
        if text.lower() not in ("true", "false"):
            raise ValueError
        return text.lower() == "true"
    if kind == "str":
        return text
    return float(text)


def parse_param(spec: str) -> tuple[str, Range | Choices]:
    """`lr=log:1e-4:1e-2`, `gamma=lin:0.9:0.999`, `num_envs=8,16,32` or `hidden_sizes=64x64,128x128` -> (field,
    its range or choices); ValueError (one line) for a malformed spec, an unknown field, an empty or inverted
    range, or a log range with a bound <= 0."""
    name, sep, body = spec.partition("=")
    name = name.strip().replace("-", "_")
    usage = "write NAME=log:LOW:HIGH, NAME=lin:LOW:HIGH or NAME=V1,V2,..., e.g. --param lr=log:1e-4:1e-2"
    if not sep or not body.strip():
        raise ValueError(f"--param {spec!r} is invalid: {usage}")
    if name not in NUMERIC_FIELDS and name not in STRUCTURAL:
        raise ValueError(f"--param {name} is not a field the tuner can search; it can search "
                         f"{', '.join(sorted(set(NUMERIC_FIELDS) | set(STRUCTURAL)))}")
    scale, _, bounds = body.partition(":")
    if scale in ("log", "lin"):
        if name not in NUMERIC_FIELDS:
            raise ValueError(f"--param {name} is structural: give its choices, e.g. --param {name}=V1,V2")
        try:
            low, high = (float(b) for b in bounds.split(":"))
        except ValueError:
            raise ValueError(f"--param {spec!r} is invalid: {usage}") from None
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"--param {spec!r} is an empty or inverted range: LOW must be below HIGH")
        if scale == "log" and low <= 0:
            raise ValueError(f"--param {spec!r} is a log range with a bound <= 0: use lin, or a LOW above 0")
        return name, Range(low, high, log=scale == "log")
    try:
        values = tuple(dict.fromkeys(_parse_value(name, v) for v in body.split(",")))
    except (ValueError, KeyError):
        raise ValueError(f"--param {spec!r} is invalid: {usage}") from None
    return name, Choices(values)


def check_space(config: PPOConfig, space: dict[str, Range | Choices]) -> None:
    """ValueError (one line) unless every value of `space` makes a valid config on top of `config`: numeric
    values at both ends of their ranges, each structural choice (so that no group fails after others trained)."""
    for name, dimension in space.items():
        values = dimension.values if isinstance(dimension, Choices) else (dimension.low, dimension.high)
        for value in values:
            try:
                dataclasses.replace(config, **{name: value})
            except ValueError as e:
                raise ValueError(f"--param {name}={_format(value)} is invalid here: {e}") from None
    structural = [n for n in space if n in STRUCTURAL]
    for combo in itertools.product(*(space[n].values for n in structural)):
        try:
            dataclasses.replace(config, **dict(zip(structural, combo)))
        except ValueError as e:
            choice = ", ".join(f"{n}={_format(v)}" for n, v in zip(structural, combo))
            raise ValueError(f"the structural choice {choice} is invalid here: {e}") from None


@dataclasses.dataclass(frozen=True)
class Trial:
    """One point of the search: its structural group's values and its numeric values."""

    index: int
    structure: tuple[tuple[str, Any], ...]  # (field, value) of every structural field searched
    params: tuple[tuple[str, float], ...]  # (field, value) of every numeric field searched

    def label(self) -> str:
        return " ".join(f"{k}={_format(v)}" for k, v in self.structure + self.params)


def sample_trials(space: dict[str, Range | Choices], num_trials: int, seed: int = 0) -> list[Trial]:
    """`num_trials` trials, split as evenly as can be over the structural groups (every group at least one
    trial; exactly one when no numeric field is searched), each group's numeric values a scrambled Halton
    sequence of its own."""
    from scipy.stats import qmc  # here: importing scipy.stats is slow, and only a tuner needs it

    structural = [n for n in space if n in STRUCTURAL]
    numeric = [n for n in space if n not in STRUCTURAL]
    groups = list(itertools.product(*(space[n].values for n in structural)))
    if num_trials < len(groups):
        raise ValueError(f"--trials {num_trials} is fewer than the {len(groups)} structural groups the search "
                         "space makes: give at least one trial to each")
    trials, index = [], 0
    for g, combo in enumerate(groups):
        # Without numeric fields a group's trials would all be the same: one each.
        count = (num_trials // len(groups) + (g < num_trials % len(groups))) if numeric else 1
        points = (qmc.Halton(d=len(numeric), scramble=True, seed=seed + g).random(count) if numeric
                  else np.zeros((count, 0)))
        for point in points:
            params = []
            for name, u in zip(numeric, point):
                dimension = space[name]
                if isinstance(dimension, Choices):
                    params.append((name, float(dimension.values[min(int(u * len(dimension.values)),
                                                                    len(dimension.values) - 1)])))
                else:
                    params.append((name, float(dimension.at(np.asarray(u)))))
            trials.append(Trial(index, tuple(zip(structural, combo)), tuple(params)))
            index += 1
    return trials


def rung_updates(num_updates: int, rungs: int, eta: int) -> list[int]:
    """The updates at which successive halving ranks its trials: `num_updates / eta^k` for k from `rungs - 1`
    down to 0, strictly increasing, the last the whole run."""
    stops = sorted({max(1, num_updates // eta ** k) for k in range(rungs)})
    return stops


def survivors(scores: Sequence[float], eta: int) -> list[int]:
    """The indices of the best `ceil(n / eta)` of `scores` (higher is better; NaN is worst), best first."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i] if math.isfinite(scores[i]) else math.inf)
    return order[:max(1, math.ceil(len(scores) / eta))]


def space_with_defaults(given: dict[str, Range | Choices]) -> dict[str, Range | Choices]:
    """The default numeric space with `given` on top (the fields given replace theirs, others are added)."""
    return {**DEFAULT_SPACE, **given}


def describe(space: dict[str, Range | Choices]) -> dict[str, str]:
    """`space` as text, as `--param` takes it."""
    return {name: str(dimension) for name, dimension in space.items()}
