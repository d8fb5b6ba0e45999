"""PPO's update: several epochs of shuffled minibatch gradient steps on one batch of experience."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import struct

from purejaxppo.config import PPOConfig
from purejaxppo.losses import ppo_loss


@struct.dataclass
class Batch:
    """Everything the loss needs, flattened over time and envs: every field `[N, ...]`."""

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    advantages: jax.Array
    returns: jax.Array


def learning_rate(config: PPOConfig, grad_step: jax.Array) -> jax.Array:
    """The learning rate at gradient step `grad_step`: `lr`, or with `anneal_lr` `lr * (1 - grad_step / total)`
    over the run's `num_updates * update_epochs * num_minibatches` steps."""
    if not config.anneal_lr:
        return jnp.asarray(config.lr, jnp.float32)
    total = config.num_updates * config.update_epochs * config.num_minibatches
    return config.lr * (1.0 - jnp.minimum(grad_step, total) / total)


def make_optimizer(config: PPOConfig) -> optax.GradientTransformation:
    """Global-norm gradient clipping, then Adam (eps 1e-5) at `learning_rate(config, step)`."""
    return optax.chain(
        optax.clip_by_global_norm(config.max_grad_norm),
        optax.adam(lambda step: learning_rate(config, step), eps=1e-5))


def update(
    params: Any,
    opt_state: optax.OptState,
    batch: Batch,
    key: jax.Array,
    apply_fn: Callable,
    tx: optax.GradientTransformation,
    config: PPOConfig,
    minibatch_axis: int = 0,
) -> tuple[Any, optax.OptState, dict[str, jax.Array]]:
    """`update_epochs` passes over `batch`, each reshuffled into `num_minibatches` minibatches.

    The minibatches split axis `minibatch_axis` of every field of `batch`: 0 for a flat `[N, ...]` batch of
    transitions, 1 for a `[T, B, ...]` batch of whole env sequences (recurrent policies), which keeps each intact.

    Returns the new params and optimizer state, and the loss metrics averaged over every gradient step.
    """
    grad_fn = jax.value_and_grad(ppo_loss, has_aux=True)

    def gradient_step(carry, minibatch: Batch):
        params, opt_state = carry
        (_, metrics), grads = grad_fn(params, apply_fn, minibatch, config)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), metrics

    def epoch(carry, key):
        order = jax.random.permutation(key, batch.returns.shape[minibatch_axis]).reshape(config.num_minibatches, -1)
        # minibatches lead: [num_minibatches, minibatch_size, ...], or [num_minibatches, T, B / num_minibatches, ...]
        take = lambda x: jnp.moveaxis(x[(slice(None),) * minibatch_axis + (order,)], minibatch_axis, 0)
        minibatches = jax.tree.map(take, batch)
        return jax.lax.scan(gradient_step, carry, minibatches)

    (params, opt_state), metrics = jax.lax.scan(
        epoch, (params, opt_state), jax.random.split(key, config.update_epochs))
    return params, opt_state, jax.tree.map(jnp.mean, metrics)
