"""`PPOConfig`: every hyperparameter of a run, validated once, immutable.

Fields fall in two groups. *Structural* fields (the env, sizes, counts, switches) decide array shapes and the
program's structure; they are static (`pytree_node=False`) and a change recompiles. *Numeric* hyperparameters
(learning rate, discount, coefficients) are pytree leaves: `make_train` reads them as traced values, so a config
whose numeric leaves are arrays can be `jax.vmap`-ed over without recompiling.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import jax
import numpy as np
from flax import struct

from purejaxppo.core.defaults import defaults_for

ACTIVATIONS = ("tanh", "relu", "gelu", "swish")
OBJECTIVES = ("clip", "kl_penalty")
"""The objectives the config names, each a value with its loss in `core.objectives.OBJECTIVES` (the config names
them without importing them: the objectives' module depends on the losses, which a config does not;
tests/test_choices.py holds the two tables to the same names)."""
TORSOS = ("mlp", "cnn")


@struct.dataclass
class PPOConfig:
    """Hyperparameters of one PPO run. Defaults are the classic CartPole settings (4 envs x 128 steps)."""

    # --- structural (static): changing one recompiles ---
    env: str = struct.field(pytree_node=False, default="CartPole-v1")
    """A gymnax env id, e.g. "CartPole-v1", "Breakout-MinAtar", "Catch-bsuite"; "<suite>:<name>" for a suite's env
    (`core.env_ids.SUITES`, each an extra); or "package.module:factory", a function that returns your own env
    (docs/your-env.md)."""
    env_kwargs: tuple[tuple[str, Any], ...] = struct.field(pytree_node=False, default=())
    """The env's parameters by name: gymnax params fields (max_steps_in_episode, ...) or constructor or factory
    arguments; a dict, kept as sorted (name, value) pairs."""
    total_timesteps: int = struct.field(pytree_node=False, default=500_000)
    """Env steps to train for, over all envs; rounded down to whole updates."""
    num_envs: int = struct.field(pytree_node=False, default=4)
    """Envs stepped in parallel (vmapped)."""
    num_steps: int = struct.field(pytree_node=False, default=128)
    """Rollout length per env per update: a batch is num_envs * num_steps transitions."""
    num_minibatches: int = struct.field(pytree_node=False, default=4)
    """Minibatches the batch is split into, each epoch."""
    update_epochs: int = struct.field(pytree_node=False, default=4)
    """Passes over the batch per update."""
    anneal_lr: bool = struct.field(pytree_node=False, default=True)
    """Decay the learning rate linearly to 0 over all gradient steps."""
    clip_value: bool = struct.field(pytree_node=False, default=True)
    """Clip the value update like the policy ratio (with clip_eps)."""
    norm_adv: bool = struct.field(pytree_node=False, default=True)
    """Normalize advantages within each minibatch."""
    hidden_sizes: tuple[int, ...] = struct.field(pytree_node=False, default=(64, 64))
    """Widths of the MLP hidden layers (actor and critic alike)."""
    activation: str = struct.field(pytree_node=False, default="tanh")
    """Hidden-layer nonlinearity: one of tanh, relu, gelu, swish."""
    shared_torso: bool = struct.field(pytree_node=False, default=False)
    """One MLP torso with a policy head and a value head, instead of two networks."""
    torso: str = struct.field(pytree_node=False, default="mlp")
    """"mlp", or "cnn": a small convolutional layer over image and grid observations (MinAtar, the grid worlds,
    pixels) before the MLP; recurrent policies too."""
    recurrent: bool = struct.field(pytree_node=False, default=False)
    """A GRU torso (width hidden_sizes[0]) that remembers the episode so far; minibatches are whole env sequences."""
    objective: str = struct.field(pytree_node=False, default="clip")
    """Policy objective: "clip" (clipped surrogate) or "kl_penalty" (surrogate minus an adaptive KL penalty)."""
    kl_early_stop: bool = struct.field(pytree_node=False, default=False)
    """End an update's minibatch steps early once the approx-KL to the rollout policy exceeds kl_target."""
    normalize_obs: bool = struct.field(pytree_node=False, default=False)
    """Normalize observations by running mean and variance over all envs (clipped to +-10)."""
    normalize_reward: bool = struct.field(pytree_node=False, default=False)
    """Scale rewards by the running std of the discounted return (clipped to +-10)."""

    # --- numeric (pytree leaves): vmappable, no recompile ---
    lr: float = 2.5e-4
    """Adam learning rate (its initial value when anneal_lr)."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda: 0 is one-step TD, 1 is Monte Carlo."""
    clip_eps: float = 0.2
    """Policy ratio clip range: ratio is kept within [1 - clip_eps, 1 + clip_eps]."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Gradients are clipped to this global norm."""
    vf_clip_eps: float | None = None
    """Value clip range when clip_value; None: the same as clip_eps."""
    kl_target: float = 0.01
    """Target KL(pi_old || pi_new) per update, for the kl_penalty objective and for kl_early_stop."""
    kl_beta: float = 1.0
    """Initial KL penalty coefficient of the kl_penalty objective (then adapted each update)."""

    def __post_init__(self):
        # jax rebuilds configs with tracers or placeholders as leaves (jit, vmap); only real values are checked.
        if isinstance(self.hidden_sizes, (list, tuple)):
            object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        object.__setattr__(self, "env_kwargs", _pairs(self.env_kwargs))
        _validate(self)

    @property
    def value_clip_eps(self) -> float | jax.Array | None:
        """The value clip range in force: None without clip_value, else vf_clip_eps, defaulting to clip_eps."""
        if not self.clip_value:
            return None
        return self.clip_eps if self.vf_clip_eps is None else self.vf_clip_eps

    @property
    def batch_size(self) -> int:
        """Transitions per update: num_envs * num_steps."""
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        """Whole updates that fit in total_timesteps."""
        return self.total_timesteps // self.batch_size

    @classmethod
    def for_env(cls, env: str, **overrides: Any) -> "PPOConfig":
        """The tuned defaults for `env` (`purejaxppo.core.defaults`: its suite's, then its own), with `overrides`
        on top."""
        return cls(**{"env": env, **defaults_for(env), **overrides})

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python fields, JSON-ready (numeric leaves as floats or lists)."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "env_kwargs":
                v = dict(v)
            elif isinstance(v, tuple):
                v = list(v)
            elif f.name in NUMERIC_FIELDS:
                v = np.asarray(v).tolist()
            out[f.name] = v
        return out


NUMERIC_FIELDS = tuple(f.name for f in dataclasses.fields(PPOConfig) if f.metadata.get("pytree_node", True))
STRUCTURAL_FIELDS = tuple(f.name for f in dataclasses.fields(PPOConfig) if f.name not in NUMERIC_FIELDS)


def _concrete(value: Any) -> np.ndarray | None:
    """`value` as a numpy array if it is a real number or array, None for tracers and placeholders."""
    if isinstance(value, jax.core.Tracer):
        return None
    if isinstance(value, (numbers.Number, np.ndarray, np.generic, jax.Array)):
        return np.asarray(value)
    return None


def _pairs(kwargs: Any) -> tuple[tuple[str, Any], ...]:
    """env_kwargs as sorted (name, value) pairs, hashable as a static field must be."""
    items = kwargs.items() if isinstance(kwargs, dict) else kwargs
    try:
        pairs = tuple(sorted((name, value) for name, value in items))
    except (TypeError, ValueError):
        pairs = None
    _check(pairs is not None and all(isinstance(n, str) and isinstance(v, (bool, numbers.Number, str))
                                     for n, v in pairs), "env_kwargs", kwargs,
           "must map names to numbers, booleans or strings, e.g. {'max_steps_in_episode': 100}")
    return pairs


def _wrong_kind(name: str, value: Any) -> bool:
    """Whether a numeric field holds what no real number is: text, a boolean, a complex number, an array of those,
    or None (but where None means "as clip_eps"). Anything else passes: jax rebuilds configs with placeholder
    leaves (tracers and shapes are checked by their dtype)."""
    if value is None:
        return name != "vf_clip_eps"
    if isinstance(value, (str, bytes, bool, np.bool_, complex)):
        return True
    dtype = getattr(value, "dtype", None)
    if dtype is None or jax.dtypes.issubdtype(dtype, jax.dtypes.extended):
        return False
    return not (jax.numpy.issubdtype(dtype, jax.numpy.integer) or jax.numpy.issubdtype(dtype, jax.numpy.floating))


def _check(ok: bool, field: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ValueError(f"PPOConfig.{field}={value!r} is invalid: {allowed}.")


INT32_MAX = 2**31 - 1


def _validate(c: PPOConfig) -> None:
    # The env id is checked where the env is made (`purejaxppo.core.envs.make_env`, before anything compiles):
    # checking it here would import every env suite whenever a config is created.
    _check(isinstance(c.env, str) and c.env.strip() != "", "env", c.env, "must be a non-empty env id, e.g. CartPole-v1")
    for name in ("total_timesteps", "num_envs", "num_steps", "num_minibatches", "update_epochs"):
        v = getattr(c, name)
        _check(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1, name, v,
               "must be a positive integer")
    _check(c.batch_size % c.num_minibatches == 0, "num_minibatches", c.num_minibatches,
           f"must divide the batch num_envs * num_steps = {c.num_envs} * {c.num_steps} = {c.batch_size}"
           " (change num_minibatches, num_envs or num_steps)")
    _check(c.total_timesteps >= c.batch_size, "total_timesteps", c.total_timesteps,
           f"must be at least one batch, num_envs * num_steps = {c.batch_size}")
    # Env steps and gradient steps are counted in int32 inside the program (and by optax's schedules).
    _check(c.num_updates * c.batch_size <= INT32_MAX, "total_timesteps", c.total_timesteps,
           f"must be at most {INT32_MAX:,}, the env steps one run can count")
    grad_steps = c.num_updates * c.update_epochs * c.num_minibatches
    _check(grad_steps <= INT32_MAX, "total_timesteps", c.total_timesteps,
           f"makes {grad_steps:,} gradient steps ({c.num_updates:,} updates x {c.update_epochs} epochs x "
           f"{c.num_minibatches} minibatches), more than the {INT32_MAX:,} one run can count: raise num_envs or "
           "num_steps, or lower update_epochs or num_minibatches")
    _check(isinstance(c.hidden_sizes, tuple) and len(c.hidden_sizes) >= 1 and all(
        isinstance(h, numbers.Integral) and not isinstance(h, bool) and h >= 1 for h in c.hidden_sizes),
           "hidden_sizes", c.hidden_sizes, "must be one or more positive integers, e.g. (64, 64)")
    _check(c.activation in ACTIVATIONS, "activation", c.activation, f"must be one of {', '.join(ACTIVATIONS)}")
    _check(c.torso in TORSOS, "torso", c.torso, f"must be one of {', '.join(TORSOS)}")
    _check(c.objective in OBJECTIVES, "objective", c.objective, f"must be one of {', '.join(OBJECTIVES)}")
    for name in ("anneal_lr", "clip_value", "norm_adv", "shared_torso", "recurrent", "kl_early_stop",
                 "normalize_obs", "normalize_reward"):
        _check(isinstance(getattr(c, name), (bool, np.bool_)), name, getattr(c, name), "must be True or False")
    if c.recurrent:  # a recurrent update recomputes whole env sequences, so minibatches split the envs
        _check(c.num_envs % c.num_minibatches == 0, "num_minibatches", c.num_minibatches,
               f"with recurrent=True it must divide num_envs = {c.num_envs}, as each minibatch holds whole env"
               " sequences (change num_minibatches or num_envs)")

    ranges = {
        "lr": (lambda x: x > 0, "must be > 0"),
        "gamma": (lambda x: (0 <= x) & (x <= 1), "must be in [0, 1]"),
        "gae_lambda": (lambda x: (0 <= x) & (x <= 1), "must be in [0, 1]"),
        "clip_eps": (lambda x: x > 0, "must be > 0"),
        "ent_coef": (lambda x: x >= 0, "must be >= 0"),
        "vf_coef": (lambda x: x >= 0, "must be >= 0"),
        "max_grad_norm": (lambda x: x > 0, "must be > 0"),
        "vf_clip_eps": (lambda x: x > 0, "must be > 0, or None for the same as clip_eps"),
        "kl_target": (lambda x: x > 0, "must be > 0"),
        "kl_beta": (lambda x: x > 0, "must be > 0"),
    }
    for name, (ok, allowed) in ranges.items():
        value = getattr(c, name)
        _check(not _wrong_kind(name, value), name, value, allowed.replace("must be", "must be a number", 1))
        v = _concrete(value)
        if v is not None:
            _check(bool(np.all(np.isfinite(v))), name, value, "must be a finite number")
            _check(bool(np.all(ok(v))), name, value, allowed)
