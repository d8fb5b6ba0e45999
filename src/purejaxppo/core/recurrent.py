"""The recurrent actor-critic: a GRU torso that remembers an episode's past observations (`PPOConfig.recurrent`).

Each step embeds the observation (the CNN first, if the torso has one, then a Dense layer and the activation),
feeds it to a GRU whose hidden state is zeroed where the observation is an episode's first, and reads the policy
and value from the new hidden state through `ActorCritic` heads over `hidden_sizes[1:]` (docs/architecture.md
draws it). How it is rolled out and trained (resets aligned with GAE's cuts, whole env sequences per minibatch)
is the `Recurrent` policy kind's, in `purejaxppo.core.policy_kinds`.
"""

from __future__ import annotations

from typing import Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from purejaxppo.core.envs.base import ActionSpec
from purejaxppo.core.networks import ActorCritic, CNNTorso, MLPTorso, Torso, split_mask, without_mask


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
    torso: MLPTorso | CNNTorso = MLPTorso()  # what leads the embedding

    def setup(self):
        # one Dense layer and the activation, after the CNN if any
        self.embed = Torso(self.hidden_sizes[:1], self.activation, self.torso)
        self.gru = nn.GRUCell(self.hidden_sizes[0])
        # the heads read h, not the observation: the action mask is handed to them
        self.heads = ActorCritic(without_mask(self.action_spec), self.hidden_sizes[1:], self.activation,
                                 self.shared_torso)

    def __call__(self, hidden: jax.Array, obs: jax.Array, first: jax.Array
                 ) -> tuple[jax.Array, distrax.Distribution, jax.Array]:
        hidden = self.recur(hidden, obs, first)
        pi, value = self.policy_value(hidden, obs)
        return hidden, pi, value

    def recur(self, hidden: jax.Array, obs: jax.Array, first: jax.Array) -> jax.Array:
        """The hidden state after seeing `obs`: `[..., H]`, from zeros where `first` `[...]`, else from `hidden`."""
        hidden = jnp.where(first[..., None], 0.0, hidden)
        features, _ = split_mask(obs, self.action_spec.mask_size)
        return self.gru(hidden, self.embed(features))[0]

    def policy_value(self, hidden: jax.Array, obs: jax.Array) -> tuple[distrax.Distribution, jax.Array]:
        """The policy and value read from hidden states `[..., H]` (after `recur` saw `obs`): batch shape `[...]`;
        `obs` gives the action mask, if the env has one."""
        _, mask = split_mask(obs, self.action_spec.mask_size)
        return self.heads(hidden, mask)

    def value(self, hidden: jax.Array, obs: jax.Array) -> jax.Array:
        """V(obs) `[...]` seen with `hidden` `[..., H]` continuing obs's episode (no reset)."""
        return self.heads.value(self.recur(hidden, obs, jnp.zeros(obs.shape[:-1], bool)))


def initial_hidden(network: RecurrentActorCritic, batch_shape: tuple[int, ...] = ()) -> jax.Array:
    """The hidden state before any step, zeros `[*batch_shape, H]` (a `first` step zeroes it anyway)."""
    return jnp.zeros(tuple(batch_shape) + (network.hidden_sizes[0],), jnp.float32)
