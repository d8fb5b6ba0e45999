"""PPO's losses, each a small pure function of arrays (all return scalars to minimize)."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp


def clipped_surrogate_loss(
    log_prob: jax.Array, old_log_prob: jax.Array, advantages: jax.Array, clip_eps: float | jax.Array
) -> jax.Array:
    """PPO's clipped policy objective, negated: `-mean(min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A))`.

    `ratio = exp(log_prob - old_log_prob)` is pi_new(a|s) / pi_old(a|s), computed in log space for stability.
    All inputs have the same shape `[N]`.
    """
    ratio = jnp.exp(log_prob - old_log_prob)
    unclipped = ratio * advantages
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    return -jnp.mean(jnp.minimum(unclipped, clipped))


def value_loss(
    values: jax.Array, old_values: jax.Array, returns: jax.Array, clip_eps: float | jax.Array | None = None
) -> jax.Array:
    """Squared error of the critic against the returns, `0.5 * mean((V - R)^2)`.

    With `clip_eps`, the value may not profit from moving more than `clip_eps` away from `old_values`, like the
    policy ratio: `0.5 * mean(max((V - R)^2, (old + clip(V - old, -eps, eps) - R)^2))`. All inputs `[N]`.
    """
    squared = jnp.square(values - returns)
    if clip_eps is None:
        return 0.5 * jnp.mean(squared)
    clipped_values = old_values + jnp.clip(values - old_values, -clip_eps, clip_eps)
    return 0.5 * jnp.mean(jnp.maximum(squared, jnp.square(clipped_values - returns)))


def approx_kl(log_prob: jax.Array, old_log_prob: jax.Array) -> jax.Array:
    """Estimate of KL(pi_old || pi_new) from samples of pi_old: `mean((ratio - 1) - log ratio)`, always >= 0."""
    log_ratio = log_prob - old_log_prob
    return jnp.mean(jnp.expm1(log_ratio) - log_ratio)


def clip_fraction(log_prob: jax.Array, old_log_prob: jax.Array, clip_eps: float | jax.Array) -> jax.Array:
    """Share of samples whose ratio lies outside [1 - clip_eps, 1 + clip_eps]."""
    return jnp.mean(jnp.abs(jnp.exp(log_prob - old_log_prob) - 1.0) > clip_eps)


def normalize(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    """`(x - mean) / (std + eps)` over all of `x`."""
    return (x - x.mean()) / (x.std() + eps)


def ppo_loss(params: Any, apply_fn: Callable, batch: Any, config: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The whole PPO objective on one minibatch, to minimize, and its parts as metrics.

    `policy_loss + vf_coef * value_loss - ent_coef * entropy`. `batch` holds `[N]`-leading arrays: obs, action,
    log_prob and value (as recorded in the rollout), advantages and returns (from GAE).
    """
    pi, values = apply_fn(params, batch.obs)
    log_prob = pi.log_prob(batch.action)
    advantages = normalize(batch.advantages) if config.norm_adv else batch.advantages
    policy = clipped_surrogate_loss(log_prob, batch.log_prob, advantages, config.clip_eps)
    value = value_loss(values, batch.value, batch.returns, config.clip_eps if config.clip_value else None)
    entropy = jnp.mean(pi.entropy())
    total = policy + config.vf_coef * value - config.ent_coef * entropy
    return total, {
        "policy_loss": policy,
        "value_loss": value,
        "entropy": entropy,
        "approx_kl": approx_kl(log_prob, batch.log_prob),
        "clip_fraction": clip_fraction(log_prob, batch.log_prob, config.clip_eps),
    }
