"""The actor (policy) and critic (state value) networks, and the policy's action distribution.

Either two separate MLPs (the default, as in PPO's paper) or one MLP torso with a policy head and a value head
(`shared_torso=True`). Orthogonal init: gain sqrt(2) for hidden layers, 0.01 for the policy head (a near-uniform
first policy), 1.0 for the value head; zero biases.
"""

from __future__ import annotations

from typing import Callable, Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from purejaxppo.core.envs.base import ActionSpec

_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": nn.tanh, "relu": nn.relu, "gelu": nn.gelu, "swish": nn.swish}


def _dense(features: int, gain: float) -> nn.Dense:
    return nn.Dense(features, kernel_init=nn.initializers.orthogonal(gain), bias_init=nn.initializers.zeros)


class MLP(nn.Module):
    """Hidden layers only: [..., obs] -> [..., hidden_sizes[-1]]."""

    hidden_sizes: Sequence[int]
    activation: str

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = _ACTIVATIONS[self.activation]
        for width in self.hidden_sizes:
            x = act(_dense(width, np.sqrt(2))(x))
        return x


class ActorCritic(nn.Module):
    """obs [..., obs_size] -> (policy distribution with batch shape [...], value [...])."""

    action_spec: ActionSpec
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    shared_torso: bool = False

    def setup(self):
        self.actor_torso = MLP(self.hidden_sizes, self.activation)
        if not self.shared_torso:
            self.critic_torso = MLP(self.hidden_sizes, self.activation)
        self.policy_head = _dense(self.action_spec.size, 0.01)
        self.value_head = _dense(1, 1.0)
        if not self.action_spec.discrete:
            # State-independent log standard deviation, one per action dimension.
            self.log_std = self.param("log_std", nn.initializers.zeros, (self.action_spec.size,))

    def __call__(self, obs: jax.Array) -> tuple[distrax.Distribution, jax.Array]:
        if self.shared_torso:
            hidden = self.actor_torso(obs)
            return self._policy(hidden), self.value_head(hidden)[..., 0]
        return self.policy(obs), self.value(obs)

    def policy(self, obs: jax.Array) -> distrax.Distribution:
        """pi(.|obs), batch shape [...], without the critic."""
        return self._policy(self.actor_torso(obs))

    def value(self, obs: jax.Array) -> jax.Array:
        """V(obs): [..., obs_size] -> [...]."""
        torso = self.actor_torso if self.shared_torso else self.critic_torso
        return self.value_head(torso(obs))[..., 0]

    def _policy(self, hidden: jax.Array) -> distrax.Distribution:
        out = self.policy_head(hidden)
        if self.action_spec.discrete:
            return distribution((out,))
        return distribution((out, jnp.exp(jnp.broadcast_to(self.log_std, out.shape))))


def distribution(dist_params: tuple[jax.Array, ...]) -> distrax.Distribution:
    """The policy distribution with parameters `dist_params`: `(logits,)` is a Categorical, `(mean, std)` a
    diagonal Gaussian (each `[..., size]`)."""
    if len(dist_params) == 1:
        return distrax.Categorical(logits=dist_params[0])
    return distrax.MultivariateNormalDiag(*dist_params)


def distribution_params(pi: distrax.Distribution) -> tuple[jax.Array, ...]:
    """The arrays `distribution` rebuilds `pi` from: what a rollout records to compute exact KLs later."""
    if isinstance(pi, distrax.Categorical):
        return (pi.logits,)
    return (pi.loc, pi.scale_diag)


def env_action(action: jax.Array, action_spec: ActionSpec) -> jax.Array:
    """The action the env receives: a Gaussian sample is clipped to the action bounds.

    The policy's log-prob stays that of the unclipped sample, so the PPO ratio is of the distribution actually
    sampled from.
    """
    if action_spec.discrete:
        return action
    return jnp.clip(action, jnp.asarray(action_spec.low), jnp.asarray(action_spec.high))
