"""`make_train`: the whole PPO training run as one pure function `train(rng)` that `jax.jit` compiles once.

    init ─► lax.scan over num_updates of update_step:
              rollout (T steps x B envs) ─► gae ─► update (epochs x minibatches) ─► metrics
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from purejaxppo.core.config import PPOConfig
from purejaxppo.core.envs import EpisodeStatistics, image_shape_of, run_env
from purejaxppo.core.gae import gae
from purejaxppo.core.losses import adapt_kl_beta
from purejaxppo.core.metrics import diverged, rollout_metrics
from purejaxppo.core.networks import distribution
from purejaxppo.core.normalization import NormState, init_stats, normalize_obs, normalize_rollout_rewards, update_stats
from purejaxppo.core.policy_kinds import make_policy_kind
from purejaxppo.core.records import EnvCarry
from purejaxppo.core.rollout import reset_envs, rollout
from purejaxppo.core.update import learning_rate, make_optimizer, update


@struct.dataclass
class TrainState:
    """Everything that carries over from one update to the next."""

    params: Any
    opt_state: optax.OptState
    env: EnvCarry  # the envs (a RecurrentCarry, with the policy's memory of them, for a recurrent policy)
    key: jax.Array
    update_count: jax.Array  # updates done so far, int32 scalar
    norm: NormState  # running statistics of observations and returns (updated only when normalizing)
    kl_beta: jax.Array  # the KL penalty's coefficient (adapted only with the kl_penalty objective)


@struct.dataclass
class TrainOutput:
    """What `train(rng)` returns. Leading axis `[num_seeds]` on every array when trained on a batch of keys."""

    metrics: dict[str, jax.Array]  # each [num_updates] (see purejaxppo.core.metrics.METRICS)
    state: TrainState  # the final training state

    @property
    def params(self) -> Any:
        """The final network parameters (`state.params`)."""
        return self.state.params


class Trainer(NamedTuple):
    """The two pure functions a training run is made of, for one config and one seed."""

    init: Callable[[jax.Array], TrainState]  # key -> initial state
    update_step: Callable[[TrainState], tuple[TrainState, dict[str, jax.Array]]]  # one update and its metrics


def make_trainer(config: PPOConfig, env_sharding: Callable[[Any], Any] | None = None,
                 env: EpisodeStatistics | None = None) -> Trainer:
    """`init` and `update_step` for `config`. Its numeric fields may be tracers (a vmapped sweep).

    `env_sharding`, if given, is applied to the `[num_envs, ...]` env batch after every reset and rollout (a
    sharding constraint that spreads the envs over devices; see `purejaxppo.scale.parallel`). `env`: the run's
    env, made once (`purejaxppo.core.envs.run_env`); made here from `config` if not given.
    """
    env = run_env(config.env, config.env_kwargs, env)
    policy = make_policy_kind(config, env.action_spec, image_shape_of(env))
    tx = make_optimizer(config)
    grad_steps_per_update = config.update_epochs * config.num_minibatches
    place = env_sharding or (lambda envs: envs)
    kl_penalty = config.objective == "kl_penalty"

    def init(key: jax.Array) -> TrainState:
        key_env, key_net, key = jax.random.split(key, 3)
        envs = place(reset_envs(env, policy, key_env, config.num_envs))
        params = policy.init_params(key_net, envs)
        obs_stats = init_stats(envs.obs.shape[1:])
        if config.normalize_obs:  # start from the first observations rather than from mean 0, variance 1
            obs_stats = update_stats(obs_stats, envs.obs)
        norm = NormState(obs_stats, init_stats(), jnp.zeros(config.num_envs, jnp.float32))
        return TrainState(params, tx.init(params), envs, key, jnp.int32(0), norm,
                          jnp.asarray(config.kl_beta, jnp.float32))

    def update_step(state: TrainState) -> tuple[TrainState, dict[str, jax.Array]]:
        key, key_rollout, key_update = jax.random.split(state.key, 3)
        norm = state.norm
        preprocess = ((lambda obs: normalize_obs(obs, norm.obs, env.action_spec.mask_size)) if config.normalize_obs
                      else (lambda obs: obs))
        envs, tr = rollout(env, policy, state.params, state.env, key_rollout, config.num_steps, preprocess,
                           record_dist=kl_penalty)
        reward = tr.reward
        if config.normalize_reward:
            norm, reward = normalize_rollout_rewards(norm, tr.reward, tr.done, config.gamma)
        advantages, returns = gae(reward, tr.value, tr.next_value, tr.terminated, tr.done,
                                  config.gamma, config.gae_lambda)
        batch = policy.batch(tr, preprocess(tr.obs), advantages, returns)
        params, opt_state, metrics = update(state.params, state.opt_state, batch, key_update, policy, tx, config,
                                            state.kl_beta)
        if config.normalize_obs:  # after the update, which trains on what the rollout's policy saw
            norm = norm.replace(obs=update_stats(norm.obs, tr.obs.reshape(-1, tr.obs.shape[-1])))
        kl_beta = state.kl_beta
        if kl_penalty:  # the exact KL of the whole update, old policy to new, sets the next coefficient
            pi, _ = policy.evaluate(params, batch)
            kl = jnp.mean(distribution(batch.dist_params).kl_divergence(pi))
            kl_beta = adapt_kl_beta(state.kl_beta, kl, config.kl_target)
            metrics = {**metrics, "kl": kl, "kl_beta": state.kl_beta}
        count = state.update_count + 1
        metrics = {**metrics, **rollout_metrics(tr.episode_return, tr.episode_length, tr.done, tr.value, returns),
                   "env_steps": count * config.batch_size, "diverged": diverged(metrics, params),
                   "learning_rate": learning_rate(config, state.update_count * grad_steps_per_update)}
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
    env: Any = None,
) -> Callable[[jax.Array], TrainOutput]:
    """Builds `train(rng) -> TrainOutput` for `config`.

    `train` is pure and jit-able; `jax.vmap(train)(keys)` trains one run per key. Given a batch of keys `[N]`
    directly, `train` vmaps itself, and `callback` (a host function, e.g. a progress display) is called after
    every update with that update's metrics, each of shape `[]` or `[N]`. `env_sharding`: see `make_trainer`.
    `env`: your own env object (or a function returning one) to train instead of an id; it is registered under
    `config.env`, which names it (`purejaxppo.core.envs.register_env`). Or an env `make_env` made, trained as it is.
    """
    trainer = make_trainer(config, env_sharding, run_env(config.env, config.env_kwargs, env))

    def train(rng: jax.Array) -> TrainOutput:
        batched = rng.ndim == (1 if jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key) else 2)
        init, update_step = trainer.init, trainer.update_step
        if batched:
            init, update_step = jax.vmap(init), jax.vmap(update_step)
        state, metrics = scan_updates(update_step, init(rng), config.num_updates, callback)
        if batched:
            metrics = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), metrics)  # [num_seeds, num_updates]
        return TrainOutput(metrics, state)

    return train
