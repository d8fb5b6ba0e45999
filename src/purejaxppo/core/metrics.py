"""The per-update metrics: their names, in the order they are reported, and those that are statistics of a whole
rollout rather than of the loss. An objective adds its own (`purejaxppo.core.objectives`)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

METRICS = ("episode_return", "episode_length", "num_episodes", "env_steps", "policy_loss", "value_loss",
           "entropy", "approx_kl", "clip_fraction", "explained_variance", "learning_rate", "grad_steps", "diverged")
"""Every update's metrics, each a scalar per update (`[num_updates]` over a run)."""



def in_report_order(names: Any) -> list[str]:
    """`names` in `METRICS` order, then any others sorted (an objective's own, `Objective.metrics`)."""
    known = [m for m in METRICS if m in names]
    return known + sorted(set(names) - set(known))


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean of `x` where `mask` (same shape, any); NaN when nothing is masked in (no episode ended)."""
    count = mask.sum()
    return jnp.where(count > 0, jnp.sum(jnp.where(mask, x, 0)) / jnp.maximum(count, 1), jnp.nan)


def explained_variance(values: jax.Array, returns: jax.Array) -> jax.Array:
    """`1 - Var(R - V) / Var(R)` over all of `values` and `returns` (same shape, e.g. `[T, B]`): 1 is a perfect
    critic, 0 no better than a constant; NaN when Var(R) is 0."""
    var = jnp.var(returns)
    return jnp.where(var > 0, 1.0 - jnp.var(returns - values) / jnp.where(var > 0, var, 1.0), jnp.nan)


def rollout_metrics(episode_return: jax.Array, episode_length: jax.Array, done: jax.Array, value: jax.Array,
                    returns: jax.Array) -> dict[str, jax.Array]:
    """A rollout's episode statistics and how well its critic explained the value targets, from `[T, B]` arrays:
    the mean return and length of the episodes that ended in it (NaN when none did), their number, and the
    explained variance of the targets `returns` by the values `value`."""
    return {
        "episode_return": masked_mean(episode_return, done),
        "episode_length": masked_mean(episode_length, done),
        "num_episodes": done.sum(),
        "explained_variance": explained_variance(value, returns),
    }


def diverged(losses: dict[str, jax.Array], params: Any) -> jax.Array:
    """Whether a loss term or a parameter is non-finite after an update, `[]` bool: one reduction over the
    parameters (their sum, which is non-finite when any of them is), so a diverged run is caught in the update
    it happens."""
    finite = jnp.isfinite(sum(jnp.sum(leaf) for leaf in jax.tree.leaves(params)))
    for name in ("policy_loss", "value_loss", "entropy"):
        finite &= jnp.isfinite(losses[name])
    return ~finite
