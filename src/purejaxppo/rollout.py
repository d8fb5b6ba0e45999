"""Collect one batch of experience: `num_steps` steps of `num_envs` envs under the current policy."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

from purejaxppo.envs import EpisodeStatistics
from purejaxppo.networks import ActorCritic, distribution_params, env_action


@struct.dataclass
class Transition:
    """A time-major batch of experience; every field is `[T, B, ...]`."""

    obs: jax.Array  # s_t as the env returned it (before any normalization), [T, B, obs_size]
    action: jax.Array  # a_t as sampled (unclipped), [T, B] or [T, B, action_size]
    log_prob: jax.Array  # log pi_old(a_t | s_t)
    value: jax.Array  # V_old(s_t)
    reward: jax.Array  # r_t
    terminated: jax.Array  # the episode truly ended at t
    done: jax.Array  # the episode ended at t: terminated or truncated (time limit)
    next_value: jax.Array  # V_old(s_t+1); V_old(final observation) where truncated at t; 0 where terminated
    episode_return: jax.Array  # return of the episode that ended at t, else 0
    episode_length: jax.Array  # its length, else 0
    dist_params: Any = None  # pi_old(.|s_t)'s parameters ([T, B, size] each), when recorded for exact KLs


@struct.dataclass
class EnvCarry:
    """The envs between steps: their states and current observations, `[B, ...]`."""

    state: Any
    obs: jax.Array


def reset_envs(env: EpisodeStatistics, key: jax.Array, num_envs: int) -> EnvCarry:
    obs, state = jax.vmap(env.reset)(jax.random.split(key, num_envs))
    return EnvCarry(state, obs)


def rollout(
    env: EpisodeStatistics,
    network: ActorCritic,
    params: Any,
    carry: EnvCarry,
    key: jax.Array,
    num_steps: int,
    preprocess: Callable[[jax.Array], jax.Array] = lambda obs: obs,
    record_dist: bool = False,
) -> tuple[EnvCarry, Transition]:
    """Steps the batch of envs `num_steps` times with actions sampled from the policy.

    The network sees `preprocess(obs)` (e.g. normalized observations); the Transition keeps the raw `obs`, and
    with `record_dist` the policy's distribution parameters. Returns the envs after the last step and the
    `[num_steps, num_envs]` Transition batch.
    """

    def step(carry: EnvCarry, key: jax.Array):
        # one split per step gives the action's key and every env's: each split is a loop of threefry rounds
        keys = jax.random.split(key, carry.obs.shape[0] + 1)
        pi = network.apply(params, preprocess(carry.obs), method=ActorCritic.policy)
        action, log_prob = pi.sample_and_log_prob(seed=keys[0])
        obs, state, reward, terminated, truncated, info = jax.vmap(env.step)(
            keys[1:], carry.state, env_action(action, env.action_spec))
        # Only a truncated episode bootstraps from its final observation; steps without one (nearly all) skip
        # the critic pass (under vmap the cond becomes a select, and the pass is always made).
        bootstrap = truncated & ~terminated
        final_value = jax.lax.cond(
            bootstrap.any(),
            lambda: network.apply(params, preprocess(info["final_observation"]), method=ActorCritic.value),
            lambda: jnp.zeros(reward.shape, jnp.float32))
        partial = (carry.obs, action, log_prob, reward, terminated, info["episode_done"],
                   info["episode_return"], info["episode_length"], bootstrap, final_value)
        dist = distribution_params(pi) if record_dist else None
        return EnvCarry(state, obs), (partial, dist)

    carry, (partial, dist) = jax.lax.scan(step, carry, jax.random.split(key, num_steps))
    obs, action, log_prob, reward, terminated, done, ep_return, ep_length, bootstrap, final_value = partial
    # The critic runs once over the whole batch and the envs' last observations, [T + 1, B], not step by step:
    # one large pass costs less than T small ones. V(s_t+1) is then the next step's V(s_t).
    values = network.apply(params, preprocess(jnp.concatenate([obs, carry.obs[None]])), method=ActorCritic.value)
    value = values[:-1]
    next_value = jnp.where(bootstrap, final_value, jnp.where(terminated, 0.0, values[1:]))
    return carry, Transition(obs, action, log_prob, value, reward, terminated, done, next_value, ep_return,
                             ep_length, dist)
