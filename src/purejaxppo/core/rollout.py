"""Collect one batch of experience: `num_steps` steps of `num_envs` envs under the current policy."""

from __future__ import annotations

from typing import Any, Callable

import jax

from purejaxppo.core.envs.wrappers import EpisodeStatistics
from purejaxppo.core.networks import distribution_params, env_action
from purejaxppo.core.policy_kinds import PolicyKind
from purejaxppo.core.records import EnvCarry, Step, Transition


def reset_envs(env: EpisodeStatistics, policy: PolicyKind, key: jax.Array, num_envs: int) -> EnvCarry:
    """`num_envs` freshly reset envs `[num_envs, ...]`, with the policy's memory of none of them yet."""
    obs, state = jax.vmap(env.reset)(jax.random.split(key, num_envs))
    return policy.reset(EnvCarry(state, obs))


def rollout(
    env: EpisodeStatistics,
    policy: PolicyKind,
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

    def step(carry: EnvCarry, key: jax.Array) -> tuple[EnvCarry, Step]:
        key_action, env_keys = policy.step_keys(key, carry.obs.shape[0])
        act = policy.act(params, preprocess(carry.obs), *policy.memory(carry))
        action, log_prob = act.pi.sample_and_log_prob(seed=key_action)
        obs, state, reward, terminated, truncated, info = env.step_batch(
            env_keys, carry.state, env_action(action, env.action_spec))
        bootstrap = truncated & ~terminated  # only a truncated episode's target reads V(final observation)
        critic = policy.critic_step(params, carry, act, info["final_observation"], bootstrap, preprocess)
        record = Step(carry.obs, action, log_prob, reward, terminated, info["episode_done"], bootstrap,
                      info["episode_return"], info["episode_length"], critic,
                      distribution_params(act.pi) if record_dist else None)
        return policy.next_carry(state, obs, act, info["episode_done"]), record

    end, steps = jax.lax.scan(step, carry, jax.random.split(key, num_steps))
    value, next_value = policy.values(params, steps, end, preprocess)
    return end, Transition(steps.obs, steps.action, steps.log_prob, value, steps.reward, steps.terminated,
                           steps.done, next_value, steps.episode_return, steps.episode_length, steps.dist_params,
                           policy.rollout_memory(carry, steps))
