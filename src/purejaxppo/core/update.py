"""PPO's update: several epochs of shuffled minibatch gradient steps on one batch of experience."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from purejaxppo.core.config import PPOConfig
from purejaxppo.core.losses import ppo_loss
from purejaxppo.core.policy_kinds import PolicyKind
from purejaxppo.core.records import Batch
from purejaxppo.core.shuffle import permutation


def learning_rate(config: PPOConfig, grad_step: jax.Array) -> jax.Array:
    """The learning rate at gradient step `grad_step`: `lr`, or with `anneal_lr` `lr * (1 - grad_step / total)`
    over the run's `num_updates * update_epochs * num_minibatches` steps."""
    if not config.anneal_lr:
        return jnp.asarray(config.lr, jnp.float32)
    total = config.num_updates * config.update_epochs * config.num_minibatches
    return config.lr * (1.0 - jnp.minimum(grad_step, total) / total)


def make_optimizer(config: PPOConfig) -> optax.GradientTransformation:
    """Global-norm gradient clipping, then Adam (eps 1e-5) at `learning_rate(config, step)`, on the parameters
    flattened into one vector: the same arithmetic as leaf by leaf, in a few kernels instead of a dozen per leaf,
    which XLA compiles faster (measured in benchmarks/README.md)."""
    return optax.flatten(optax.chain(
        optax.clip_by_global_norm(config.max_grad_norm),
        optax.adam(lambda step: learning_rate(config, step), eps=1e-5)))


def update(
    params: Any,
    opt_state: optax.OptState,
    batch: Batch,
    key: jax.Array,
    policy: PolicyKind,
    tx: optax.GradientTransformation,
    config: PPOConfig,
    kl_beta: jax.Array | None = None,
) -> tuple[Any, optax.OptState, dict[str, jax.Array]]:
    """`update_epochs` passes over `batch`, each reshuffled into `num_minibatches` minibatches.

    The policy kind says what the minibatches split (`policy.units`: a feed-forward policy's `[N]` transitions,
    a recurrent one's `[B]` whole env sequences) and how its network reads them (`policy.evaluate`).

    With `config.kl_early_stop`, once a minibatch's approx-KL to the rollout policy exceeds `kl_target` that step
    and every later one of the update leave params and optimizer state as they are. Returns the new params and
    optimizer state, the loss metrics averaged over the gradient steps taken, and `grad_steps`, their number.
    `kl_beta`: the KL penalty's coefficient, for `config.objective == "kl_penalty"`.
    """
    grad_fn = jax.value_and_grad(ppo_loss, has_aux=True)

    def gradient_step(carry, minibatch: Batch):
        params, opt_state, stopped = carry
        (_, metrics), grads = grad_fn(params, policy.evaluate, minibatch, config, kl_beta)
        updates, new_opt_state = tx.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        if config.kl_early_stop:  # a select, not a branch: the step is computed, then dropped
            stopped = stopped | (metrics["approx_kl"] > config.kl_target)
            keep = lambda old, new: jnp.where(stopped, old, new)
            new_params, new_opt_state = jax.tree.map(keep, (params, opt_state), (new_params, new_opt_state))
        return (new_params, new_opt_state, stopped), (metrics, ~stopped)

    def epoch(carry, key):
        order = permutation(key, policy.units(batch)).reshape(config.num_minibatches, -1)
        return jax.lax.scan(gradient_step, carry, policy.take(batch, order))

    (params, opt_state, _), (metrics, taken) = jax.lax.scan(
        epoch, (params, opt_state, jnp.bool_(False)), jax.random.split(key, config.update_epochs))
    steps = taken.sum()  # >= 1: the first step's KL is 0, the policy not having moved yet
    metrics = jax.tree.map(lambda m: jnp.sum(jnp.where(taken, m, 0)) / steps, metrics)
    return params, opt_state, {**metrics, "grad_steps": steps}
