"""PPO's update: several epochs of shuffled minibatch gradient steps on one batch of experience, the optimizer
that takes them, and its learning-rate schedule."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from purejaxppo.core.policy_kinds import PolicyKind
from purejaxppo.core.records import Batch
from purejaxppo.core.shuffle import permutation

Schedule = Callable[[jax.Array], jax.Array]  # gradient step -> learning rate
Loss = Callable[[Any, Batch], tuple[jax.Array, dict[str, jax.Array]]]  # (params, minibatch) -> (loss, metrics)


def constant_lr(lr: float | jax.Array) -> Schedule:
    """`lr` at every gradient step."""
    return lambda grad_step: jnp.asarray(lr, jnp.float32)


def linear_decay(lr: float | jax.Array, total_steps: int) -> Schedule:
    """`lr * (1 - grad_step / total_steps)`: from `lr` down to 0 at the run's last gradient step."""
    return lambda grad_step: lr * (1.0 - jnp.minimum(grad_step, total_steps) / total_steps)


def make_schedule(config: Any) -> Schedule:
    """The config's learning rate by gradient step: `linear_decay` over the run's `num_updates * update_epochs *
    num_minibatches` steps with `anneal_lr`, else `constant_lr`."""
    if not config.anneal_lr:
        return constant_lr(config.lr)
    return linear_decay(config.lr, config.num_updates * config.update_epochs * config.num_minibatches)


def make_optimizer(schedule: Schedule, max_grad_norm: float | jax.Array) -> optax.GradientTransformation:
    """Global-norm gradient clipping, then Adam (eps 1e-5) at `schedule(step)`, on the parameters flattened into
    one vector: the same arithmetic as leaf by leaf, in a few kernels instead of a dozen per leaf, which XLA
    compiles faster (benchmarks/README.md)."""
    return optax.flatten(optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(schedule, eps=1e-5)))


class KeepEveryStep:
    """Every gradient step of an update is taken."""

    def __call__(self, stopped: jax.Array, approx_kl: jax.Array, old: Any, new: Any) -> tuple[jax.Array, Any]:
        return stopped, new


@dataclasses.dataclass(frozen=True)
class StopAboveKL:
    """Once a minibatch's approx-KL to the rollout policy exceeds `kl_target`, that step and every later one of
    the update leave params and optimizer state as they are (`PPOConfig.kl_early_stop`)."""

    kl_target: float | jax.Array

    def __call__(self, stopped: jax.Array, approx_kl: jax.Array, old: Any, new: Any) -> tuple[jax.Array, Any]:
        # a select, not a branch: the step is computed, then dropped
        stopped = stopped | (approx_kl > self.kl_target)
        return stopped, jax.tree.map(lambda o, n: jnp.where(stopped, o, n), old, new)


def make_early_stop(config: Any) -> KeepEveryStep | StopAboveKL:
    """`StopAboveKL(kl_target)` with `kl_early_stop`, else `KeepEveryStep`."""
    return StopAboveKL(config.kl_target) if config.kl_early_stop else KeepEveryStep()


def update(
    params: Any,
    opt_state: optax.OptState,
    batch: Batch,
    key: jax.Array,
    *,
    loss: Loss,
    policy: PolicyKind,
    tx: optax.GradientTransformation,
    epochs: int,
    num_minibatches: int,
    early_stop: KeepEveryStep | StopAboveKL,
) -> tuple[Any, optax.OptState, dict[str, jax.Array]]:
    """`epochs` passes over `batch`, each reshuffled into `num_minibatches` minibatches, a gradient step of `loss`
    on each.

    The policy kind says what the minibatches split (`policy.units`: a feed-forward policy's `[N]` transitions,
    a recurrent one's `[B]` whole env sequences). `early_stop` may drop the steps after a minibatch moved the
    policy too far. Returns the new params and optimizer state, the loss metrics averaged over the gradient steps
    taken, and `grad_steps`, their number.
    """
    grad_fn = jax.value_and_grad(loss, has_aux=True)

    def gradient_step(carry, minibatch: Batch):
        params, opt_state, stopped = carry
        (_, metrics), grads = grad_fn(params, minibatch)
        updates, new_opt_state = tx.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        stopped, (new_params, new_opt_state) = early_stop(
            stopped, metrics["approx_kl"], (params, opt_state), (new_params, new_opt_state))
        return (new_params, new_opt_state, stopped), (metrics, ~stopped)

    def epoch(carry, key):
        order = permutation(key, policy.units(batch)).reshape(num_minibatches, -1)
        return jax.lax.scan(gradient_step, carry, policy.take(batch, order))

    (params, opt_state, _), (metrics, taken) = jax.lax.scan(
        epoch, (params, opt_state, jnp.bool_(False)), jax.random.split(key, epochs))
    steps = taken.sum()  # >= 1: the first step's KL is 0, the policy not having moved yet
    metrics = jax.tree.map(lambda m: jnp.sum(jnp.where(taken, m, 0)) / steps, metrics)
    return params, opt_state, {**metrics, "grad_steps": steps}
