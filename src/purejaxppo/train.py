"""`make_train`: the whole PPO training run as one pure function `train(rng)` that `jax.jit` compiles once.

    init ─► lax.scan over num_updates of update_step:
              rollout (T steps x B envs) ─► gae ─► update (epochs x minibatches) ─► metrics
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from purejaxppo.config import PPOConfig
from purejaxppo.envs import make_env
from purejaxppo.gae import gae
from purejaxppo.losses import adapt_kl_beta
from purejaxppo.networks import distribution, make_network
from purejaxppo.normalization import (NormState, discounted_returns, init_stats, normalize_obs, scale_rewards,
                                      update_stats)
from purejaxppo.recurrent import apply_sequences, recurrent_rollout, reset_recurrent_envs
from purejaxppo.rollout import EnvCarry, reset_envs, rollout
from purejaxppo.update import Batch, learning_rate, make_optimizer, update

# Per-update metrics, in the order they are reported.
METRICS = ("episode_return", "episode_length", "num_episodes", "env_steps", "policy_loss", "value_loss",
           "entropy", "approx_kl", "clip_fraction", "explained_variance", "learning_rate", "grad_steps")
KL_PENALTY_METRICS = ("kl", "kl_beta")  # also, with the kl_penalty objective


@struct.dataclass
class TrainState:
    """Everything that carries over from one update to the next."""

    params: Any
    opt_state: optax.OptState
    env: EnvCarry
    key: jax.Array
    update_count: jax.Array  # updates done so far, int32 scalar
    norm: NormState  # running statistics of observations and returns (updated only when normalizing)
    kl_beta: jax.Array  # the KL penalty's coefficient (adapted only with the kl_penalty objective)


@struct.dataclass
class TrainOutput:
    """What `train(rng)` returns. Leading axis `[num_seeds]` on every array when trained on a batch of keys."""

    params: Any  # the final network parameters
    metrics: dict[str, jax.Array]  # each [num_updates] (see METRICS)
    state: TrainState  # the final training state


def _masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean of `x` where `mask`; NaN when nothing is masked in (no episode ended)."""
    count = mask.sum()
    return jnp.where(count > 0, jnp.sum(jnp.where(mask, x, 0)) / jnp.maximum(count, 1), jnp.nan)


def explained_variance(values: jax.Array, returns: jax.Array) -> jax.Array:
    """`1 - Var(R - V) / Var(R)`: 1 is a perfect critic, 0 no better than a constant; NaN when Var(R) is 0."""
    var = jnp.var(returns)
    return jnp.where(var > 0, 1.0 - jnp.var(returns - values) / jnp.where(var > 0, var, 1.0), jnp.nan)


class Trainer(NamedTuple):
    """The two pure functions a training run is made of, for one config and one seed."""

    init: Callable[[jax.Array], TrainState]  # key -> initial state
    update_step: Callable[[TrainState], tuple[TrainState, dict[str, jax.Array]]]  # one update and its metrics


def make_trainer(config: PPOConfig, env_sharding: Callable[[Any], Any] | None = None) -> Trainer:
    """`init` and `update_step` for `config`. Its numeric fields may be tracers (a vmapped sweep).

    `env_sharding`, if given, is applied to the `[num_envs, ...]` env batch after every reset and rollout (a
    sharding constraint that spreads the envs over devices; see `purejaxppo.parallel`).
    """
    env = make_env(config.env)
    network = make_network(config, env.action_spec)
    tx = make_optimizer(config)
    grad_steps_per_update = config.update_epochs * config.num_minibatches
    place = env_sharding or (lambda envs: envs)
    apply_fn, minibatch_axis = network.apply, 0
    if config.recurrent:  # the update reruns the GRU over whole env sequences [T, B]: it shuffles envs, not steps
        apply_fn, minibatch_axis = functools.partial(apply_sequences, network), 1

    def init(key: jax.Array) -> TrainState:
        key_env, key_net, key = jax.random.split(key, 3)
        if config.recurrent:
            envs = place(reset_recurrent_envs(env, network, key_env, config.num_envs))
            params = network.init(key_net, envs.hidden, envs.obs, envs.first)
        else:
            envs = place(reset_envs(env, key_env, config.num_envs))
            params = network.init(key_net, envs.obs)
        obs_stats = init_stats(envs.obs.shape[1:])
        if config.normalize_obs:  # start from the first observations rather than from mean 0, variance 1
            obs_stats = update_stats(obs_stats, envs.obs)
        norm = NormState(obs_stats, init_stats(), jnp.zeros(config.num_envs, jnp.float32))
        return TrainState(params, tx.init(params), envs, key, jnp.int32(0), norm,
                          jnp.asarray(config.kl_beta, jnp.float32))

    def update_step(state: TrainState) -> tuple[TrainState, dict[str, jax.Array]]:
        key, key_rollout, key_update = jax.random.split(state.key, 3)
        norm = state.norm
        preprocess = (lambda obs: normalize_obs(obs, norm.obs)) if config.normalize_obs else (lambda obs: obs)
        kl_penalty = config.objective == "kl_penalty"
        if config.recurrent:
            envs, tr, sequences = recurrent_rollout(env, network, state.params, state.env, key_rollout,
                                                    config.num_steps, preprocess, record_dist=kl_penalty)
        else:
            envs, tr = rollout(env, network, state.params, state.env, key_rollout, config.num_steps, preprocess,
                               record_dist=kl_penalty)
        reward = tr.reward
        if config.normalize_reward:
            last_return, running_returns = discounted_returns(tr.reward, tr.done, norm.discounted_return,
                                                              config.gamma)
            norm = norm.replace(reward=update_stats(norm.reward, running_returns.reshape(-1)),
                                discounted_return=last_return)
            reward = scale_rewards(tr.reward, norm.reward)
        advantages, returns = gae(reward, tr.value, tr.next_value, tr.terminated, tr.done,
                                  config.gamma, config.gae_lambda)
        if config.recurrent:  # [T, B]: the network's input is each env's sequence from its first hidden state
            batch = Batch(sequences.replace(obs=preprocess(sequences.obs)), tr.action, tr.log_prob, tr.value,
                          advantages, returns, tr.dist_params)
        else:
            flat = lambda x: x.reshape((config.batch_size,) + x.shape[2:])  # [T, B, ...] -> [T * B, ...]
            batch = Batch(*map(flat, (preprocess(tr.obs), tr.action, tr.log_prob, tr.value, advantages, returns)),
                          dist_params=jax.tree.map(flat, tr.dist_params))
        params, opt_state, metrics = update(state.params, state.opt_state, batch, key_update, apply_fn,
                                            tx, config, state.kl_beta, minibatch_axis)
        if config.normalize_obs:  # after the update, which trains on what the rollout's policy saw
            norm = norm.replace(obs=update_stats(norm.obs, tr.obs.reshape(-1, tr.obs.shape[-1])))
        kl_beta = state.kl_beta
        if kl_penalty:  # the exact KL of the whole update, old policy to new, sets the next coefficient
            pi, _ = apply_fn(params, batch.obs)
            kl = jnp.mean(distribution(batch.dist_params).kl_divergence(pi))
            kl_beta = adapt_kl_beta(state.kl_beta, kl, config.kl_target)
            metrics = {**metrics, "kl": kl, "kl_beta": state.kl_beta}
        count = state.update_count + 1
        metrics = {
            **metrics,
            "episode_return": _masked_mean(tr.episode_return, tr.done),
            "episode_length": _masked_mean(tr.episode_length, tr.done),
            "num_episodes": tr.done.sum(),
            "env_steps": count * config.batch_size,
            "explained_variance": explained_variance(tr.value, returns),
            "learning_rate": learning_rate(config, state.update_count * grad_steps_per_update),
        }
        return TrainState(params, opt_state, place(envs), key, count, norm, kl_beta), metrics

    return Trainer(init, update_step)


def scan_updates(
    update_step: Callable[[TrainState], tuple[TrainState, dict[str, jax.Array]]],
    state: TrainState,
    num_updates: int,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """`num_updates` update steps as one `lax.scan`; metrics stacked on a new leading axis `[num_updates]`.

    `callback`, if given, is called on the host with each update's metrics as they are computed.
    """

    def body(state, _):
        state, metrics = update_step(state)
        if callback is not None:
            jax.debug.callback(callback, metrics)
        return state, metrics

    return jax.lax.scan(body, state, length=num_updates)


def make_train(
    config: PPOConfig,
    callback: Callable[[dict[str, Any]], None] | None = None,
    env_sharding: Callable[[Any], Any] | None = None,
) -> Callable[[jax.Array], TrainOutput]:
    """Builds `train(rng) -> TrainOutput` for `config`.

    `train` is pure and jit-able; `jax.vmap(train)(keys)` trains one run per key. Given a batch of keys `[N]`
    directly, `train` vmaps itself, and `callback` (a host function, e.g. a progress display) is called after
    every update with that update's metrics, each of shape `[]` or `[N]`. `env_sharding`: see `make_trainer`.
    """
    trainer = make_trainer(config, env_sharding)

    def train(rng: jax.Array) -> TrainOutput:
        batched = rng.ndim == (1 if jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key) else 2)
        init, update_step = trainer.init, trainer.update_step
        if batched:
            init, update_step = jax.vmap(init), jax.vmap(update_step)
        state, metrics = scan_updates(update_step, init(rng), config.num_updates, callback)
        if batched:
            metrics = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), metrics)  # [num_seeds, num_updates]
        return TrainOutput(state.params, metrics, state)

    return train
