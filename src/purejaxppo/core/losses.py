"""PPO's losses, each a small pure function of arrays (all return scalars to minimize)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

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


class LossHyperparams(NamedTuple):
    """What weighs and bounds the loss; each a float, or a traced scalar in a sweep."""

    vf_coef: float | jax.Array
    ent_coef: float | jax.Array
    clip_eps: float | jax.Array  # the policy ratio's clip range (and the band `clip_fraction` reports)
    value_clip_eps: float | jax.Array | None  # the value's clip range; None: the value loss is not clipped
    advantages: Callable[[jax.Array], jax.Array] = normalize  # applied to each minibatch's advantages


def ppo_loss(
    params: Any,
    batch: Any,
    objective_state: jax.Array,
    *,
    evaluate: Callable[[Any, Any], tuple[Any, jax.Array]],
    objective: Any,
    hp: LossHyperparams,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The whole PPO objective on one minibatch, to minimize, and its parts as metrics.

    `policy_loss + vf_coef * value_loss - ent_coef * entropy`, the policy loss being `objective`'s
    (`purejaxppo.core.objectives`: the clipped surrogate, or the KL-penalized one at the coefficient
    `objective_state`). `batch` holds obs, action, log_prob and value (as recorded in the rollout), advantages and
    returns (from GAE), and what the objective recorded, all of one shape `[...]` (`[N]` transitions, or `[T, B]`
    whole sequences of a recurrent policy); `evaluate(params, batch)` is the network's policy and values on it
    (`PolicyKind.evaluate`), and the means are over all of `[...]`.
    """
    pi, values = evaluate(params, batch)
    log_prob = pi.log_prob(batch.action)
    policy, metrics = objective.policy_loss(pi, log_prob, batch, hp.advantages(batch.advantages), objective_state)
    value = value_loss(values, batch.value, batch.returns, hp.value_clip_eps)
    entropy = jnp.mean(pi.entropy())
    total = policy + hp.vf_coef * value - hp.ent_coef * entropy
    return total, {
        "policy_loss": policy,
        "value_loss": value,
        "entropy": entropy,
        "approx_kl": approx_kl(log_prob, batch.log_prob),
        "clip_fraction": clip_fraction(log_prob, batch.log_prob, hp.clip_eps),
        **metrics,
    }


def keep_advantages(advantages: jax.Array) -> jax.Array:
    """The advantages as GAE gave them (`PPOConfig.norm_adv=False`)."""
    return advantages


def loss_hyperparams(config: Any) -> LossHyperparams:
    """The loss's hyperparameters from `config`: where `norm_adv` and `clip_value` are chosen."""
    return LossHyperparams(config.vf_coef, config.ent_coef, config.clip_eps, config.value_clip_eps,
                           normalize if config.norm_adv else keep_advantages)
