"""The actor (policy) and critic (state value) networks, and the policy's action distribution.

Either two separate torsos (the default, as in PPO's paper) or one torso with a policy head and a value head
(`shared_torso=True`). A torso is an MLP (`MLPTorso`), or led by a small CNN over the observation's image
(`CNNTorso`, `PPOConfig.torso = "cnn"`): one 3x3 convolution of 8 channels, stride 2 (3 on images of 48 pixels a
side or more), "SAME" padding so every pixel is in some patch. Orthogonal init: gain sqrt(2) for hidden
layers, 0.01 for the policy head (a near-uniform first policy), 1.0 for the value head; zero biases.

Invalid actions (an env's action mask, the observation's last `action_spec.mask_size` entries) get logit
`MASKED_LOGIT`: probability exactly 0 in float32, so they are never sampled and add nothing to log-probs or entropy.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from purejaxppo.core.envs.base import ActionSpec

MASKED_LOGIT = -1e9  # finite: 0 * MASKED_LOGIT is 0 in the entropy, where -inf would give nan

_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": nn.tanh, "relu": nn.relu, "gelu": nn.gelu, "swish": nn.swish}


def _dense(features: int, gain: float) -> nn.Dense:
    return nn.Dense(features, kernel_init=nn.initializers.orthogonal(gain), bias_init=nn.initializers.zeros)


CNN_CHANNELS = 8
"""Channels of the torso's convolution. MinAtar's baseline has 16 at stride 1, which on a CPU costs several times
an MLP's update; this layer, under twice (benchmarks/README.md, "The CNN torso on a CPU")."""


def image_patches(image: jax.Array, stride: int) -> jax.Array:
    """`[N, H, W, C]` -> `[N, ceil(H / stride), ceil(W / stride), 9C]`: the 3x3 neighbourhoods a convolution of
    that stride with "SAME" padding reads (zeros past the edges, the extra one on the far side), so every pixel is
    in some patch; in (row, column, channel) order, so a Dense kernel `[9C, F]` is an HWIO kernel `[3, 3, C, F]`.
    Slices, not `lax.conv_general_dilated_patches`, which XLA's CPU backend runs as a slower convolution."""
    _, h, w, _ = image.shape
    rows, cols = -(-h // stride), -(-w // stride)
    pad_h, pad_w = max((rows - 1) * stride + 3 - h, 0), max((cols - 1) * stride + 3 - w, 0)
    padded = jnp.pad(image, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
    return jnp.concatenate([padded[:, i:i + stride * (rows - 1) + 1:stride, j:j + stride * (cols - 1) + 1:stride]
                            for i in range(3) for j in range(3)], axis=-1)


def cnn_stride(image_shape: Sequence[int]) -> int:
    """2, or 3 on images of 48 pixels a side or more; never over 3, the kernel's width, so no pixel is skipped."""
    return min(3, max(2, min(image_shape[:2]) // 16))


class CNN(nn.Module):
    """`[..., H*W*C + rest]` -> `[..., H'*W'*CNN_CHANNELS + rest]`: the leading image convolved (`image_patches`,
    then one Dense layer: a matrix product, which XLA's CPU backend runs far faster than its convolution) and
    flattened, the rest kept."""

    image_shape: tuple[int, int, int]
    activation: str

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        size = int(np.prod(self.image_shape))
        batch = x.shape[:-1]
        image = x[..., :size].reshape((-1,) + tuple(self.image_shape))
        patches = image_patches(image, cnn_stride(self.image_shape))
        features = _ACTIVATIONS[self.activation](_dense(CNN_CHANNELS, np.sqrt(2))(patches)).reshape(batch + (-1,))
        return jnp.concatenate([features, x[..., size:]], axis=-1)


@dataclasses.dataclass(frozen=True)
class MLPTorso:
    """Dense hidden layers over the flat observation (`PPOConfig.torso="mlp"`)."""

    def lead(self, x: jax.Array, activation: str) -> jax.Array:
        return x


@dataclasses.dataclass(frozen=True)
class CNNTorso:
    """The `CNN` over the image the observation starts with, `image_shape` `(H, W, C)`, then the Dense layers
    (`PPOConfig.torso="cnn"`)."""

    image_shape: tuple[int, int, int]

    def lead(self, x: jax.Array, activation: str) -> jax.Array:
        return CNN(tuple(self.image_shape), activation)(x)  # made inside the calling Torso: named CNN_0 there


class Torso(nn.Module):
    """Hidden layers only: `[..., obs]` -> `[..., hidden_sizes[-1]]`, led by what `kind` puts first (an MLP
    torso's parameters are named as they always were: checkpoints keep loading)."""

    hidden_sizes: Sequence[int]
    activation: str
    kind: MLPTorso | CNNTorso = MLPTorso()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.kind.lead(x, self.activation)
        act = _ACTIVATIONS[self.activation]
        for width in self.hidden_sizes:
            x = act(_dense(width, np.sqrt(2))(x))
        return x


def split_mask(obs: jax.Array, mask_size: int) -> tuple[jax.Array, jax.Array | None]:
    """`obs` `[..., obs_size]` -> (features `[..., obs_size - mask_size]`, mask `[..., mask_size]` bool or None)."""
    if not mask_size:
        return obs, None
    return obs[..., :-mask_size], obs[..., -mask_size:] > 0.5


class ActorCritic(nn.Module):
    """obs [..., obs_size] -> (policy distribution with batch shape [...], value [...])."""

    action_spec: ActionSpec
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    shared_torso: bool = False
    torso: MLPTorso | CNNTorso = MLPTorso()  # what leads each torso's hidden layers

    def setup(self):
        self.actor_torso = Torso(self.hidden_sizes, self.activation, self.torso)
        if not self.shared_torso:
            self.critic_torso = Torso(self.hidden_sizes, self.activation, self.torso)
        self.policy_head = _dense(self.action_spec.size, 0.01)
        self.value_head = _dense(1, 1.0)
        if not self.action_spec.discrete:
            # State-independent log standard deviation, one per action dimension.
            self.log_std = self.param("log_std", nn.initializers.zeros, (self.action_spec.size,))

    def __call__(self, obs: jax.Array, mask: jax.Array | None = None) -> tuple[distrax.Distribution, jax.Array]:
        """`mask` `[..., mask_size]`: given by a caller whose `obs` is not the env's (the recurrent heads')."""
        obs, mask = self._split(obs, mask)
        if self.shared_torso:
            hidden = self.actor_torso(obs)
            return self._policy(hidden, mask), self.value_head(hidden)[..., 0]
        return self._policy(self.actor_torso(obs), mask), self.value_head(self.critic_torso(obs))[..., 0]

    def policy(self, obs: jax.Array, mask: jax.Array | None = None) -> distrax.Distribution:
        """pi(.|obs), batch shape [...], without the critic."""
        obs, mask = self._split(obs, mask)
        return self._policy(self.actor_torso(obs), mask)

    def value(self, obs: jax.Array) -> jax.Array:
        """V(obs): [..., obs_size] -> [...]."""
        obs, _ = self._split(obs, None)
        torso = self.actor_torso if self.shared_torso else self.critic_torso
        return self.value_head(torso(obs))[..., 0]

    def _split(self, obs: jax.Array, mask: jax.Array | None) -> tuple[jax.Array, jax.Array | None]:
        return (obs, mask) if mask is not None else split_mask(obs, self.action_spec.mask_size)

    def _policy(self, hidden: jax.Array, mask: jax.Array | None) -> distrax.Distribution:
        out = self.policy_head(hidden)
        if self.action_spec.discrete:
            return distribution(policy_logits(out, mask, self.action_spec))
        return distribution({"loc": out, "scale": jnp.exp(jnp.broadcast_to(self.log_std, out.shape))})


def policy_logits(out: jax.Array, mask: jax.Array | None, spec: ActionSpec) -> dict[str, jax.Array]:
    """The policy head's `out` `[..., size]` as distribution parameters: `{"logits": [..., n]}`, or
    `{"factor_logits": [..., k, n]}` for factorized categoricals, with invalid actions (`mask` false, or a factor's
    padding beyond its `nvec` entry) at `MASKED_LOGIT`."""
    if spec.nvec:
        out = out.reshape(out.shape[:-1] + (len(spec.nvec), spec.num_actions))
        padding = np.arange(spec.num_actions)[None, :] < np.asarray(spec.nvec)[:, None]  # [k, n]
        valid = padding if mask is None else mask.reshape(out.shape) & padding
        return {"factor_logits": jnp.where(valid, out, MASKED_LOGIT)}
    return {"logits": out if mask is None else jnp.where(mask, out, MASKED_LOGIT)}


def without_mask(spec: ActionSpec) -> ActionSpec:
    """`spec` for a network whose input carries no mask (the mask is passed to it instead)."""
    return dataclasses.replace(spec, mask_size=0)


def distribution(dist_params: dict[str, jax.Array]) -> distrax.Distribution:
    """The policy distribution with parameters `dist_params`: `{"logits": [..., n]}` a Categorical,
    `{"factor_logits": [..., k, n]}` k independent ones (an action `[..., k]`), `{"loc", "scale"}` (each
    `[..., size]`) a diagonal Gaussian."""
    if "logits" in dist_params:
        return distrax.Categorical(logits=dist_params["logits"])
    if "factor_logits" in dist_params:
        return distrax.Independent(distrax.Categorical(logits=dist_params["factor_logits"]), 1)
    return distrax.MultivariateNormalDiag(dist_params["loc"], dist_params["scale"])


def distribution_params(pi: distrax.Distribution) -> dict[str, jax.Array]:
    """The arrays `distribution` rebuilds `pi` from: what a rollout records to compute exact KLs later."""
    if isinstance(pi, distrax.Categorical):
        return {"logits": pi.logits}
    if isinstance(pi, distrax.Independent):
        return {"factor_logits": pi.distribution.logits}
    return {"loc": pi.loc, "scale": pi.scale_diag}


def env_action(action: jax.Array, action_spec: ActionSpec) -> jax.Array:
    """The action the env receives: a Gaussian sample is clipped to the action bounds.

    The policy's log-prob stays that of the unclipped sample, so the PPO ratio is of the distribution actually
    sampled from.
    """
    if action_spec.discrete:
        return action
    return jnp.clip(action, jnp.asarray(action_spec.low), jnp.asarray(action_spec.high))
