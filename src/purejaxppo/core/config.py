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

ACTIVATIONS = ("tanh", "relu", "gelu", "swish")
OBJECTIVES = ("clip", "kl_penalty")
TORSOS = ("mlp", "cnn")


@struct.dataclass
class PPOConfig:
    """Hyperparameters of one PPO run. Defaults are the classic CartPole settings (4 envs x 128 steps)."""

    # --- structural (static): changing one recompiles ---
    env: str = struct.field(pytree_node=False, default="CartPole-v1")
    """A gymnax env id, e.g. "CartPole-v1", "Breakout-MinAtar", "Catch-bsuite"; "brax:<name>" (brax extra); or
    "package.module:factory", a function that returns your own env (docs/your-env.md)."""
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
    """"mlp", or "cnn": a small convolutional layer over image and grid observations (MinAtar, navix, xminigrid,
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
        """The tuned defaults for `env` (its suite's, SUITE_DEFAULTS, then its own, ENV_DEFAULTS), with
        `overrides` on top."""
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


# Tuned defaults per env, used by `PPOConfig.for_env` and the CLI; the class defaults are PPO's classic CartPole
# settings. An entry from `python -m purejaxppo.tune` names its record, experiments/tuning/<env>/ (its command,
# tables and best.json, here to 4 significant digits), what it differs in from the class defaults.
ENV_DEFAULTS: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(total_timesteps=200_000, lr=8.861e-3, gamma=0.9515, gae_lambda=0.9858, clip_eps=0.1393,
                        ent_coef=3.443e-4, vf_coef=0.9725, max_grad_norm=1.264),  # experiments/tuning/CartPole-v1
    "Acrobot-v1": dict(total_timesteps=500_000, num_envs=16, update_epochs=10, lr=6.38e-3, gamma=0.9689,
                       gae_lambda=0.8038, clip_eps=0.2046, ent_coef=1.122e-5, vf_coef=0.381,
                       max_grad_norm=0.4399),  # experiments/tuning/Acrobot-v1
    # Without normalized observations the earlier defaults never reached the flag in 1e6 steps (-200, 8 seeds).
    "MountainCar-v0": dict(num_envs=16, num_steps=16, normalize_obs=True, normalize_reward=True, lr=2.802e-3,
                           gamma=0.9907, gae_lambda=0.8966, clip_eps=0.1756, ent_coef=1.237e-4, vf_coef=0.5109,
                           max_grad_norm=0.3968),  # experiments/tuning/MountainCar-v0
    "Pendulum-v1": dict(total_timesteps=1_000_000, num_envs=32, num_minibatches=8, update_epochs=10,
                        clip_value=False, lr=3.893e-3, gamma=0.9588, gae_lambda=0.8586, clip_eps=0.2864,
                        ent_coef=0.02693, vf_coef=0.6194, max_grad_norm=1.256),  # experiments/tuning/Pendulum-v1
    # Without normalization PPO only learns to spend less force: it never finds the goal's +100 in 1e6 steps.
    "MountainCarContinuous-v0": dict(total_timesteps=1_000_000, num_envs=16, ent_coef=0.0, normalize_obs=True,
                                     normalize_reward=True),
    **{f"{game}-MinAtar": dict(total_timesteps=10_000_000, num_envs=64, num_minibatches=8, lr=5e-3,
                                activation="relu")
       for game in ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders")},
    "Catch-bsuite": dict(total_timesteps=150_000, num_envs=16, lr=4.862e-3, gamma=0.9706, gae_lambda=0.9449,
                         clip_eps=0.1647, ent_coef=2.209e-5, vf_coef=0.7731,
                         max_grad_norm=0.5305),  # experiments/tuning/Catch-bsuite
    "UmbrellaChain-bsuite": dict(total_timesteps=150_000, lr=2.802e-3, gamma=0.9907, gae_lambda=0.8966,
                                 clip_eps=0.1756, ent_coef=1.237e-4, vf_coef=0.5109,
                                 max_grad_norm=0.3968),  # experiments/tuning/UmbrellaChain-bsuite
    "DiscountingChain-bsuite": dict(total_timesteps=150_000, num_envs=16, lr=1.775e-3, gamma=0.962, gae_lambda=0.848,
                                    clip_eps=0.2242, ent_coef=1.117e-5, vf_coef=0.5822,
                                    max_grad_norm=1.312),  # experiments/tuning/DiscountingChain-bsuite
    # Rewards the context bit seen 5 steps before: a feed-forward policy cannot beat chance (return 0).
    "MemoryChain-bsuite": dict(total_timesteps=150_000, num_envs=16, num_steps=32, recurrent=True, lr=4.983e-4,
                               gamma=0.9535, gae_lambda=0.8424, clip_eps=0.2483, ent_coef=4.446e-5, vf_coef=0.7417,
                               max_grad_norm=0.3363),  # experiments/tuning/MemoryChain-bsuite
    # Its step count reaches the policy unscaled (0-200) beside 0/1 wall bits: unnormalized, PPO never beats chance.
    "MetaMaze-misc": dict(normalize_obs=True, lr=2.186e-3),  # experiments/tuning/MetaMaze-misc
    # Its goal stays hidden until found: a feed-forward policy reaches 1.7, a recurrent one 9.
    "PointRobot-misc": dict(num_envs=16, recurrent=True, normalize_obs=True,
                            lr=1.503e-3),  # experiments/tuning/PointRobot-misc
    # The better arm must be found and remembered within each episode: feed-forward 68.5, recurrent 89.
    "BernoulliBandit-misc": dict(num_envs=16, recurrent=True, normalize_obs=True,
                                 lr=3.178e-3),  # experiments/tuning/BernoulliBandit-misc
    # Brax (the brax extra): the PPO paper's MuJoCo settings (2048 steps per update, 10 epochs of 64-sample
    # minibatches, lr 3e-4, no entropy bonus, 1M steps) as 16 envs x 128 steps, a CPU-sized batch; on an
    # accelerator raise num_envs (Brax's own PPO steps thousands of envs at once).
    **{f"brax:{name}": dict(total_timesteps=1_000_000, num_envs=16, num_steps=128, num_minibatches=32,
                            update_epochs=10, lr=3e-4, ent_coef=0.0)
       for name in ("ant", "halfcheetah", "hopper", "humanoid", "humanoidstandup", "inverted_double_pendulum",
                    "inverted_pendulum", "pusher", "reacher", "swimmer", "walker2d")},
}

# Defaults per suite (by id prefix), under any env's own entry above. Each was checked on the suite's reference env
# at seeds 0-1 (docs/suites.md reports seeds 8-15): xminigrid's and navix's Empty-8x8, jumanji's Snake, Craftax
# Classic (symbolic); Craftax's are its paper's PPO settings but for a CPU-sized batch (64 envs, not 1024) and
# narrower layers (256, not 512).
SUITE_DEFAULTS: dict[str, dict[str, Any]] = {
    "xminigrid:": dict(total_timesteps=500_000, num_envs=16, num_steps=64),
    "navix:": dict(total_timesteps=500_000, num_envs=16, num_steps=64),
    "jumanji:": dict(total_timesteps=1_000_000, num_envs=64, num_steps=64, num_minibatches=8, activation="relu",
                     lr=1e-3),
    "craftax:": dict(total_timesteps=2_000_000, num_envs=64, num_steps=64, num_minibatches=8, hidden_sizes=(256, 256),
                     lr=2e-4, gae_lambda=0.8, ent_coef=0.01),
}


def defaults_for(env: str) -> dict[str, Any]:
    """The config fields `env` trains with unless told otherwise: its suite's defaults, then its own."""
    suite = next((v for prefix, v in SUITE_DEFAULTS.items() if isinstance(env, str) and env.startswith(prefix)), {})
    return {**suite, **ENV_DEFAULTS.get(env, {})} if isinstance(env, str) else {}


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
    _check(len(c.hidden_sizes) >= 1 and all(isinstance(h, numbers.Integral) and h >= 1 for h in c.hidden_sizes),
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
        v = _concrete(getattr(c, name))
        if v is not None:
            _check(bool(np.all(np.isfinite(v) & ok(v))), name, getattr(c, name), allowed)


def field_docs() -> dict[str, str]:
    """Each field's one-line docstring (the string literal under it in `PPOConfig`), for the CLI's --help."""
    import ast
    import inspect

    body = ast.parse(inspect.getsource(PPOConfig)).body[0].body
    docs = {}
    for node, after in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            docs[node.target.id] = after.value.value
    return docs
