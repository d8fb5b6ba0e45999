"""Collect one batch of experience: `num_steps` steps of `num_envs` envs under the current policy."""

from __future__ import annotations

from typing import Any, Callable

import jax

from purejaxppo.core.envs.wrappers import EpisodeStatistics
from purejaxppo.core.networks import env_action
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
    record: Callable[[Any], Any] = lambda pi: None,
) -> tuple[EnvCarry, Transition]:
    """Steps the batch of envs `num_steps` times with actions sampled from the policy.

    The network sees `preprocess(obs)` (e.g. normalized observations); the Transition keeps the raw `obs`, and
    as `dist_params` what `record(pi)` keeps of the acting policy (the objective's choice: `Objective.record`).
    Returns the envs after the last step and the `[num_steps, num_envs]` Transition batch.
    """

    def step(carry: EnvCarry, key: jax.Array) -> tuple[EnvCarry, Step]:
        key_action, env_keys = policy.step_keys(key, carry.obs.shape[0])
        act = policy.act(params, preprocess(carry.obs), *policy.memory(carry))
        action, log_prob = act.pi.sample_and_log_prob(seed=key_action)
        obs, state, reward, terminated, truncated, info = env.step_batch(
            env_keys, carry.state, env_action(action, env.action_spec))
        bootstrap = truncated & ~terminated  # only a truncated episode's target reads V(final observation)
        critic = policy.critic_step(params, carry, act, info["final_observation"], bootstrap, preprocess)
        kept = Step(obs=carry.obs, action=action, log_prob=log_prob, reward=reward, terminated=terminated,
                    done=info["episode_done"], bootstrap=bootstrap, episode_return=info["episode_return"],
                    episode_length=info["episode_length"], critic=critic, dist_params=record(act.pi))
        return policy.next_carry(state, obs, act, info["episode_done"]), kept

    end, steps = jax.lax.scan(step, carry, jax.random.split(key, num_steps))
    value, next_value = policy.values(params, steps, end, preprocess)
    return end, Transition(obs=steps.obs, action=steps.action, log_prob=steps.log_prob, value=value,
                           reward=steps.reward, terminated=steps.terminated, done=steps.done, next_value=next_value,
                           episode_return=steps.episode_return, episode_length=steps.episode_length,
                           dist_params=steps.dist_params, memory=policy.rollout_memory(carry, steps))
