"""The named records that flow through one update: the envs between steps, what a rollout step records, the
rollout's `Transition` batch, and the `Batch` the update trains on."""

from __future__ import annotations

from typing import Any

import jax
from flax import struct


@struct.dataclass
class EnvCarry:
    """The envs between steps, `[B, ...]` (a feed-forward policy's whole carry)."""

    state: Any
    obs: jax.Array  # each env's current observation, [B, obs_size]


@struct.dataclass
class RecurrentCarry(EnvCarry):
    """The envs between steps and a recurrent policy's memory of them, `[B, ...]`."""

    hidden: jax.Array  # h after each env's last step, [B, H]
    first: jax.Array  # obs is its episode's first (the last step ended one): the next step resets hidden, [B]


@struct.dataclass
class Step:
    """What one rollout step records, `[B, ...]` (`[T, B, ...]` once the rollout's scan stacks them)."""

    obs: jax.Array  # s_t as the env returned it (before any normalization)
    action: jax.Array  # a_t as sampled (unclipped)
    log_prob: jax.Array  # log pi_old(a_t | s_t)
    reward: jax.Array  # r_t
    terminated: jax.Array  # the episode truly ended at t
    done: jax.Array  # the episode ended at t: terminated or truncated (time limit)
    bootstrap: jax.Array  # truncated and not terminated: the value target reads V(final observation)
    episode_return: jax.Array  # return of the episode that ended at t, else 0
    episode_length: jax.Array  # its length, else 0
    critic: Any  # what the policy kind keeps to read the values after the loop (`PolicyKind.values`)
    dist_params: Any = None  # pi_old(.|s_t)'s parameters, when recorded for exact KLs


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
    next_value: jax.Array  # V_old(s_t+1); V_old(final observation) where truncated at t
    episode_return: jax.Array  # return of the episode that ended at t, else 0
    episode_length: jax.Array  # its length, else 0
    dist_params: Any = None  # pi_old(.|s_t)'s parameters ([T, B, size] each), when recorded for exact KLs
    memory: Any = None  # what the policy reads besides obs to rerun the rollout (a recurrent one's SequenceStart)


@struct.dataclass
class Batch:
    """Everything the loss needs. A feed-forward policy's batch is flat, every field `[N, ...]`; a recurrent
    policy's is time-major whole env sequences, `[T, B, ...]` (see `PolicyKind.batch`)."""

    obs: jax.Array  # the network's input: observations after any normalization
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    advantages: jax.Array
    returns: jax.Array
    dist_params: Any = None  # the rollout policy's distribution parameters, for the KL penalty's exact KL
    memory: Any = None  # what else the network reads (a recurrent policy's `SequenceStart`)


@struct.dataclass
class SequenceStart:
    """What a recurrent network reads, besides the observations, to rerun a rollout: every field has the env
    axis 1, so that a minibatch of envs slices them alike."""

    hidden: jax.Array  # h before the rollout's first step, [1, B, H]
    first: jax.Array  # s_t is its episode's first (done_t-1): h is zeroed before step t, [T, B]
