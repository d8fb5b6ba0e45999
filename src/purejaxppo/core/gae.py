"""Generalized Advantage Estimation (Schulman et al., 2016), cut at episode ends.

    delta_t = r_t + gamma * (1 - terminated_t) * V(s_t+1) - V(s_t)
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_t+1
    R_t     = A_t + V(s_t)

A truncated episode (time limit) still bootstraps its last step from V(final observation): only a true
termination zeroes the future value. Either kind of end stops the advantage from flowing back across it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gae(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    terminations: jax.Array,
    dones: jax.Array,
    gamma: float | jax.Array,
    gae_lambda: float | jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Advantages and value targets of a time-major rollout.

    Args:
      rewards: r_t, `[T, ...]`.
      values: V(s_t), `[T, ...]`.
      next_values: V(s_t+1), or V(final observation) where the episode was truncated at t, `[T, ...]`.
      terminations: the episode truly ended at t (no future value), `[T, ...]`.
      dones: the episode ended at t by termination or truncation, `[T, ...]`.
      gamma: discount factor.
      gae_lambda: GAE's lambda.

    Returns:
      `(advantages, returns)`, each `[T, ...]`, with `returns = advantages + values`.
    """
    not_terminated = 1.0 - terminations.astype(values.dtype)
    not_done = 1.0 - dones.astype(values.dtype)
    deltas = rewards + gamma * not_terminated * next_values - values

    def backward(next_advantage, step):
        delta, not_done_t = step
        advantage = delta + gamma * gae_lambda * not_done_t * next_advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(backward, jnp.zeros_like(deltas[0]), (deltas, not_done), reverse=True)
    return advantages, advantages + values
