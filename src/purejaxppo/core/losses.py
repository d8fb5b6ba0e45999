"""PPO's losses, each a small pure function of arrays (all return scalars to minimize)."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from purejaxppo.core.networks import distribution


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


def kl_penalty_loss(
    log_prob: jax.Array, old_log_prob: jax.Array, advantages: jax.Array, kl: jax.Array, beta: float | jax.Array
) -> jax.Array:
    """PPO's adaptive-KL objective, negated: `-(mean(ratio * A) - beta * mean(KL))`.

    `kl` is KL(pi_old || pi_new) at each sample's state; all inputs `[N]`, `beta` a scalar.
    """
    ratio = jnp.exp(log_prob - old_log_prob)
    return -(jnp.mean(ratio * advantages) - beta * jnp.mean(kl))


def adapt_kl_beta(beta: jax.Array, kl: jax.Array, kl_target: float | jax.Array) -> jax.Array:
    """The penalty coefficient for the next update: doubled when the measured `kl` exceeds `1.5 * kl_target`,
    halved when it is below `kl_target / 1.5`, else kept."""
    return jnp.where(kl > 1.5 * kl_target, beta * 2.0, jnp.where(kl < kl_target / 1.5, beta / 2.0, beta))


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


def ppo_loss(
    params: Any, evaluate: Callable[[Any, Any], tuple[Any, jax.Array]], batch: Any, config: Any,
    kl_beta: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The whole PPO objective on one minibatch, to minimize, and its parts as metrics.

    `policy_loss + vf_coef * value_loss - ent_coef * entropy`, the policy loss being the clipped surrogate, or
    with `config.objective == "kl_penalty"` the KL-penalized surrogate at coefficient `kl_beta`. `batch` holds
    obs, action, log_prob and value (as recorded in the rollout), advantages and returns (from GAE), and for the
    KL penalty the rollout policy's distribution parameters, all of one shape `[...]` (`[N]` transitions, or
    `[T, B]` whole sequences of a recurrent policy); `evaluate(params, batch)` is the network's policy and values
    on it (`PolicyKind.evaluate`), and the means are over all of `[...]`.
    """
    pi, values = evaluate(params, batch)
    log_prob = pi.log_prob(batch.action)
    advantages = normalize(batch.advantages) if config.norm_adv else batch.advantages
    metrics = {}
    if config.objective == "kl_penalty":
        kl = distribution(batch.dist_params).kl_divergence(pi)  # exact, per state
        policy = kl_penalty_loss(log_prob, batch.log_prob, advantages, kl, kl_beta)
        metrics["kl"] = jnp.mean(kl)
    else:
        policy = clipped_surrogate_loss(log_prob, batch.log_prob, advantages, config.clip_eps)
    value = value_loss(values, batch.value, batch.returns, config.value_clip_eps)
    entropy = jnp.mean(pi.entropy())
    total = policy + config.vf_coef * value - config.ent_coef * entropy
    return total, {
        "policy_loss": policy,
        "value_loss": value,
        "entropy": entropy,
        "approx_kl": approx_kl(log_prob, batch.log_prob),
        "clip_fraction": clip_fraction(log_prob, batch.log_prob, config.clip_eps),
        **metrics,
    }
