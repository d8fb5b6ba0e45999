"""Observation and reward normalization by running statistics, merged over every env of the batch.

    obs    -> clip((obs - mean) / sqrt(var + eps), -10, 10)       mean, var: of every observation seen so far
    reward -> clip(reward / sqrt(var_G + eps), -10, 10)            var_G: of the discounted return G_t
    G_t = r_t + gamma * G_t-1, restarted at 0 after an episode ends

The statistics live in the training state (`NormState`), so they are saved with the parameters and a loaded
policy normalizes its observations exactly as training did.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

CLIP = 10.0
EPS = 1e-8


@struct.dataclass
class RunningStats:
    """Mean and (population) variance of every sample seen so far, per feature."""

    mean: jax.Array  # [...]: the feature shape
    var: jax.Array  # [...]
    count: jax.Array  # [], float32; starts at a tiny positive count so the first merge is well defined


@struct.dataclass
class NormState:
    """What normalization carries from one update to the next."""

    obs: RunningStats  # of the raw observations, [obs_size]
    reward: RunningStats  # of the discounted returns, []
    discounted_return: jax.Array  # G of each env's current episode, [num_envs]


def init_stats(shape: tuple[int, ...] = ()) -> RunningStats:
    """No samples yet: mean 0, variance 1 (normalizing is then the identity)."""
    return RunningStats(jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32), jnp.float32(1e-4))


def update_stats(stats: RunningStats, samples: jax.Array) -> RunningStats:
    """`stats` merged with a batch of `samples` `[N, ...]` (Chan et al.'s parallel variance update)."""
    n = jnp.float32(samples.shape[0])
    batch_mean, batch_var = samples.mean(axis=0), samples.var(axis=0)
    count = stats.count + n
    delta = batch_mean - stats.mean
    mean = stats.mean + delta * n / count
    m2 = stats.var * stats.count + batch_var * n + jnp.square(delta) * stats.count * n / count
    return RunningStats(mean, m2 / count, count)


def normalize_obs(obs: jax.Array, stats: RunningStats, raw_tail: int = 0) -> jax.Array:
    """`obs` `[..., obs_size]` standardized by `stats` and clipped to +-10, but for its last `raw_tail` entries
    (an action mask, which the policy reads as 0 or 1)."""
    normalized = jnp.clip((obs - stats.mean) / jnp.sqrt(stats.var + EPS), -CLIP, CLIP)
    if not raw_tail:
        return normalized
    return jnp.concatenate([normalized[..., :-raw_tail], obs[..., -raw_tail:]], axis=-1)


def discounted_returns(
    rewards: jax.Array, dones: jax.Array, discounted_return: jax.Array, gamma: float | jax.Array
) -> tuple[jax.Array, jax.Array]:
    """The running discounted return after each step of a time-major rollout.

    Args:
      rewards: r_t, `[T, B]`.
      dones: the episode ended at t, `[T, B]`.
      discounted_return: G of each env before the rollout, `[B]`.
      gamma: discount factor.

    Returns:
      `(G after the rollout [B], G_t [T, B])`, with `G_t = r_t + gamma * G_t-1` and G restarting at 0 after an end.
    """

    def step(g, rd):
        reward, done = rd
        g = reward + gamma * g
        return jnp.where(done, 0.0, g), g

    return jax.lax.scan(step, discounted_return, (rewards, dones))


def scale_rewards(rewards: jax.Array, stats: RunningStats) -> jax.Array:
    """`rewards` divided by the std of the discounted return, clipped to +-10 (not centred: a shift would change
    which policy is optimal)."""
    return jnp.clip(rewards / jnp.sqrt(stats.var + EPS), -CLIP, CLIP)


def normalize_rollout_rewards(norm: NormState, rewards: jax.Array, dones: jax.Array, gamma: float | jax.Array
                              ) -> tuple[NormState, jax.Array]:
    """A rollout's rewards `[T, B]` scaled by the running std of the discounted return, after merging this
    rollout's discounted returns into the statistics; returns the updated statistics and the scaled rewards."""
    last_return, running_returns = discounted_returns(rewards, dones, norm.discounted_return, gamma)
    norm = norm.replace(reward=update_stats(norm.reward, running_returns.reshape(-1)), discounted_return=last_return)
    return norm, scale_rewards(rewards, norm.reward)


def init_norm_state(obs: jax.Array) -> NormState:
    """Statistics of nothing yet, for envs whose first observations are `obs` `[B, obs_size]`."""
    return NormState(init_stats(obs.shape[1:]), init_stats(), jnp.zeros(obs.shape[0], jnp.float32))


class StandardizeObs:
    """Observations standardized by the running statistics of every observation seen (`normalize_obs`), the action
    mask's `mask_size` entries left raw."""

    def __init__(self, mask_size: int = 0):
        self.mask_size = mask_size

    def init(self, stats: RunningStats, obs: jax.Array) -> RunningStats:
        """Starts from the first observations `[B, obs_size]`, rather than from mean 0, variance 1."""
        return update_stats(stats, obs)

    def apply(self, stats: RunningStats, obs: jax.Array) -> jax.Array:
        return normalize_obs(obs, stats, self.mask_size)

    def update(self, stats: RunningStats, obs: jax.Array) -> RunningStats:
        """`stats` merged with a rollout's observations `[T, B, obs_size]`."""
        return update_stats(stats, obs.reshape(-1, obs.shape[-1]))


class RawObs:
    """Observations as the env gives them; the statistics stay as they started."""

    def init(self, stats: RunningStats, obs: jax.Array) -> RunningStats:
        return stats

    def apply(self, stats: RunningStats, obs: jax.Array) -> jax.Array:
        return obs

    def update(self, stats: RunningStats, obs: jax.Array) -> RunningStats:
        return stats


class ScaleRewards:
    """Rewards divided by the running std of the discounted return (`normalize_rollout_rewards`)."""

    def __init__(self, gamma: float | jax.Array):
        self.gamma = gamma

    def __call__(self, norm: NormState, rewards: jax.Array, dones: jax.Array) -> tuple[NormState, jax.Array]:
        return normalize_rollout_rewards(norm, rewards, dones, self.gamma)


class RawRewards:
    """Rewards as the env gives them."""

    def __call__(self, norm: NormState, rewards: jax.Array, dones: jax.Array) -> tuple[NormState, jax.Array]:
        return norm, rewards


def make_normalizers(config: Any, mask_size: int = 0) -> tuple[StandardizeObs | RawObs, ScaleRewards | RawRewards]:
    """The observation normalizer and reward scaler `config.normalize_obs` and `config.normalize_reward` choose."""
    obs = StandardizeObs(mask_size) if config.normalize_obs else RawObs()
    return obs, (ScaleRewards(config.gamma) if config.normalize_reward else RawRewards())
