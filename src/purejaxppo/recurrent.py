"""Recurrent policies: a GRU torso that remembers an episode's past observations, its rollout, and its update's
recomputation of whole env sequences (`PPOConfig.recurrent`).

    obs_t ─► Dense + activation ─► GRU ─► h_t ─► ActorCritic heads over hidden_sizes[1:] ─► (pi_t, V_t)
                                    ▲
              h_t-1, zeroed where obs_t is an episode's first (first_t)

One-step alignment with GAE: `done_t` (the episode ended at step t) both cuts A_t+1 from A_t and makes
`first_t+1` true, so step t+1 starts from a zero hidden state. `next_value_t` is V(s_t+1) read with h_t, which
continues s_t's episode: after a truncation, V(final observation) is not read with a reset state.

The rollout records the hidden state every env starts it with and `first` at every step; from those the update
reruns the GRU over each env's sequence exactly as the rollout did. Minibatches are therefore whole env sequences
(`[T, num_envs / num_minibatches]`): the update shuffles envs, never steps.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from purejaxppo.envs import ActionSpec, EpisodeStatistics
from purejaxppo.networks import MLP, ActorCritic, distribution_params, env_action
from purejaxppo.rollout import EnvCarry, Transition, reset_envs


class RecurrentActorCritic(nn.Module):
    """`(hidden [..., H], obs [..., obs_size], first [...]) -> (hidden [..., H], policy with batch shape [...],
    value [...])`, one step; `H = hidden_sizes[0]`.

    The embedding and the GRU are one torso shared by policy and value, so both read the same memory; after it,
    `hidden_sizes[1:]` are the layers of separate actor and critic MLPs (one MLP with `shared_torso`) and the heads,
    as in `ActorCritic`, with its init (the embedding's too; the GRU keeps flax's, orthogonal recurrent kernels).
    The hidden state is zeroed before the step where `first`.
    """

    action_spec: ActionSpec
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    shared_torso: bool = False

    def setup(self):
        self.embed = MLP(self.hidden_sizes[:1], self.activation)  # one Dense layer and the activation
        self.gru = nn.GRUCell(self.hidden_sizes[0])
        self.heads = ActorCritic(self.action_spec, self.hidden_sizes[1:], self.activation, self.shared_torso)

    def __call__(self, hidden: jax.Array, obs: jax.Array, first: jax.Array
                 ) -> tuple[jax.Array, distrax.Distribution, jax.Array]:
        hidden = self.recur(hidden, obs, first)
        pi, value = self.heads(hidden)
        return hidden, pi, value

    def recur(self, hidden: jax.Array, obs: jax.Array, first: jax.Array) -> jax.Array:
        """The hidden state after seeing `obs`: `[..., H]`, from zeros where `first` `[...]`, else from `hidden`."""
        hidden = jnp.where(first[..., None], 0.0, hidden)
        return self.gru(hidden, self.embed(obs))[0]

    def policy_value(self, hidden: jax.Array) -> tuple[distrax.Distribution, jax.Array]:
        """The policy and value read from hidden states `[..., H]` (after `recur`): batch shape `[...]`."""
        return self.heads(hidden)

    def value(self, hidden: jax.Array, obs: jax.Array) -> jax.Array:
        """V(obs) `[...]` seen with `hidden` `[..., H]` continuing obs's episode (no reset)."""
        return self.heads.value(self.recur(hidden, obs, jnp.zeros(obs.shape[:-1], bool)))


def initial_hidden(network: RecurrentActorCritic, batch_shape: tuple[int, ...] = ()) -> jax.Array:
    """The hidden state before any step, zeros `[*batch_shape, H]` (a `first` step zeroes it anyway)."""
    return jnp.zeros(tuple(batch_shape) + (network.hidden_sizes[0],), jnp.float32)


@struct.dataclass
class RecurrentCarry(EnvCarry):
    """The envs and the policy's memory between steps, `[B, ...]`."""

    hidden: jax.Array  # h after each env's last step, [B, H]
    first: jax.Array  # obs is its episode's first (the last step ended one): the next step resets hidden, [B]


def reset_recurrent_envs(env: EpisodeStatistics, network: RecurrentActorCritic, key: jax.Array, num_envs: int
                         ) -> RecurrentCarry:
    """`num_envs` freshly reset envs (as `rollout.reset_envs`), each at its episode's first observation."""
    envs = reset_envs(env, key, num_envs)
    return RecurrentCarry(envs.state, envs.obs, initial_hidden(network, (num_envs,)), jnp.ones(num_envs, bool))


@struct.dataclass
class Sequences:
    """What the network reads to recompute a rollout. Time-major; every field has the env axis 1, so a minibatch
    of envs slices them alike."""

    hidden: jax.Array  # h before the rollout's first step, [1, B, H]
    obs: jax.Array  # s_t, [T, B, obs_size]
    first: jax.Array  # s_t is its episode's first (done_t-1): h is zeroed before step t, [T, B]


def recurrent_rollout(
    env: EpisodeStatistics,
    network: RecurrentActorCritic,
    params: Any,
    carry: RecurrentCarry,
    key: jax.Array,
    num_steps: int,
    preprocess: Callable[[jax.Array], jax.Array] = lambda obs: obs,
    record_dist: bool = False,
) -> tuple[RecurrentCarry, Transition, Sequences]:
    """Steps the batch of envs `num_steps` times with actions sampled from the recurrent policy.

    As `rollout.rollout`: the network sees `preprocess(obs)`, the Transition and the Sequences keep the raw `obs`,
    and with `record_dist` the Transition holds the policy's distribution parameters. Returns the envs and memory
    after the last step, the `[num_steps, num_envs]` Transition batch, and the `Sequences` that `apply_sequences`
    recomputes its log-probs and values from (given the same `preprocess` of their observations).
    """

    def step(carry: RecurrentCarry, key: jax.Array):
        key_action, key_env = jax.random.split(key)
        hidden, pi, value = network.apply(params, carry.hidden, preprocess(carry.obs), carry.first)
        action, log_prob = pi.sample_and_log_prob(seed=key_action)
        keys = jax.random.split(key_env, carry.obs.shape[0])
        obs, state, reward, terminated, truncated, info = jax.vmap(env.step)(
            keys, carry.state, env_action(action, env.action_spec))
        done = info["episode_done"]
        partial = (carry.obs, carry.first, action, log_prob, value, reward, terminated, done,
                   info["episode_return"], info["episode_length"])
        dist = distribution_params(pi) if record_dist else None
        return RecurrentCarry(state, obs, hidden, done), (partial, info["final_observation"], hidden, dist)

    end, (partial, final_obs, hidden, dist) = jax.lax.scan(step, carry, jax.random.split(key, num_steps))
    obs, first, action, log_prob, value, reward, terminated, done, ep_return, ep_length = partial
    # h_t continues s_t's episode into final_obs_t (s_t+1 unless the episode ended at t): one batched V after the
    # scan gives every next value, truncated episodes' bootstrap included, with the state it belongs to.
    next_value = network.apply(params, hidden, preprocess(final_obs), method=RecurrentActorCritic.value)
    transition = Transition(obs, action, log_prob, value, reward, terminated, done, next_value, ep_return, ep_length,
                            dist)
    return end, transition, Sequences(carry.hidden[None], obs, first)


def apply_sequences(network: RecurrentActorCritic, params: Any, sequences: Sequences
                    ) -> tuple[distrax.Distribution, jax.Array]:
    """Reruns the GRU over `[T, B]` sequences from their first hidden state: the policy (batch shape `[T, B]`)
    and values `[T, B]` at every step, as the rollout computed them for the same params."""

    def step(hidden, inputs):
        hidden = network.apply(params, hidden, *inputs, method=RecurrentActorCritic.recur)
        return hidden, hidden

    _, hidden = jax.lax.scan(step, sequences.hidden[0], (sequences.obs, sequences.first))
    return network.apply(params, hidden, method=RecurrentActorCritic.policy_value)
