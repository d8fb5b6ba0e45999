"""`make_train`: the whole PPO training run as one pure function `train(rng)` that `jax.jit` compiles once: an
init, then a `lax.scan` of updates, each a rollout, GAE, epochs of minibatch steps and the update's metrics
(docs/architecture.md draws the flow). What varies between runs (the env, the policy kind, the objective, the
normalizers, the learning-rate schedule) is chosen once, in `make_trainer`, as values the loop calls.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from purejaxppo.core.config import PPOConfig
from purejaxppo.core.envs import EpisodeStatistics, image_shape_of, run_env
from purejaxppo.core.gae import gae
from purejaxppo.core.losses import LossHyperparams, loss_hyperparams, ppo_loss
from purejaxppo.core.metrics import diverged, rollout_metrics
from purejaxppo.core.normalization import (
    NormState,
    RawObs,
    RawRewards,
    ScaleRewards,
    StandardizeObs,
    init_norm_state,
    make_normalizers,
)
from purejaxppo.core.objectives import Objective, make_objective
from purejaxppo.core.policy_kinds import PolicyKind, make_policy_kind
from purejaxppo.core.records import EnvCarry
from purejaxppo.core.rollout import reset_envs, rollout
from purejaxppo.core.update import (
    KeepEveryStep,
    Loss,
    Schedule,
    StopAboveKL,
    make_early_stop,
    make_optimizer,
    make_schedule,
    update,
)
from purejaxppo.core.user_network import check_network


@struct.dataclass
class TrainState:
    """Everything that carries over from one update to the next."""

    params: Any
    opt_state: optax.OptState
    env: EnvCarry  # the envs (a RecurrentCarry, with the policy's memory of them, for a recurrent policy)
    key: jax.Array
    update_count: jax.Array  # updates done so far, int32 scalar
    norm: NormState  # running statistics of observations and returns (updated only when normalizing)
    kl_beta: jax.Array  # the objective's state: the KL penalty's coefficient (`purejaxppo.core.objectives`)


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
    components: Components  # the values it was made of: what else needs them (the memory estimate) reads them here


class Components(NamedTuple):
    """The values a run is made of, each chosen once from its config (`make_components`)."""

    env: EpisodeStatistics
    policy: PolicyKind  # feed-forward or recurrent, with its network and torso
    objective: Objective  # the clipped surrogate or the KL penalty
    obs_normalizer: StandardizeObs | RawObs
    reward_scaler: ScaleRewards | RawRewards
    schedule: Schedule  # the learning rate by gradient step
    tx: optax.GradientTransformation
    early_stop: KeepEveryStep | StopAboveKL
    loss_hp: LossHyperparams

    def loss(self, objective_state: jax.Array) -> Loss:
        """`(params, minibatch) -> (loss, metrics)`: the PPO loss at the objective's state."""
        return functools.partial(ppo_loss, objective_state=objective_state, evaluate=self.policy.evaluate,
                                 objective=self.objective, hp=self.loss_hp)


def make_components(config: PPOConfig, env: EpisodeStatistics | None = None, network: Any = None) -> Components:
    """The run's env (`env`, made once by `purejaxppo.core.envs.run_env`; made here from `config` if not given)
    and the values the config's other choices select: the one place that reads them. `network`: a user's, in
    place of the config's (`purejaxppo.core.user_network`)."""
    env = run_env(config.env, config.env_kwargs, env)
    obs_normalizer, reward_scaler = make_normalizers(config, env.action_spec.mask_size)
    schedule = make_schedule(config)
    return Components(env=env, policy=make_policy_kind(config, env.action_spec, image_shape_of(env), network),
                      objective=make_objective(config), obs_normalizer=obs_normalizer, reward_scaler=reward_scaler,
                      schedule=schedule, tx=make_optimizer(schedule, config.max_grad_norm),
                      early_stop=make_early_stop(config), loss_hp=loss_hyperparams(config))


def make_trainer(config: PPOConfig, env_sharding: Callable[[Any], Any] | None = None,
                 env: EpisodeStatistics | None = None, network: Any = None) -> Trainer:
    """`init` and `update_step` for `config`. Its numeric fields may be tracers (a vmapped sweep).

    `env_sharding`, if given, is applied to the `[num_envs, ...]` env batch after every reset and rollout (a
    sharding constraint that spreads the envs over devices; see `purejaxppo.scale.parallel`). `env`: the run's
    env, made once (`purejaxppo.core.envs.run_env`); made here from `config` if not given. `network`: see
    `make_train`.
    """
    c = make_components(config, env, network)
    grad_steps_per_update = config.update_epochs * config.num_minibatches
    place = env_sharding or (lambda envs: envs)

    def init(key: jax.Array) -> TrainState:
        key_env, key_net, key = jax.random.split(key, 3)
        envs = place(reset_envs(c.env, c.policy, key_env, config.num_envs))
        params = c.policy.init_params(key_net, envs)
        norm = init_norm_state(envs.obs)
        norm = norm.replace(obs=c.obs_normalizer.init(norm.obs, envs.obs))
        return TrainState(params=params, opt_state=c.tx.init(params), env=envs, key=key,
                          update_count=jnp.int32(0), norm=norm, kl_beta=c.objective.init())

    def update_step(state: TrainState) -> tuple[TrainState, dict[str, jax.Array]]:
        key, key_rollout, key_update = jax.random.split(state.key, 3)
        obs_stats = state.norm.obs  # the rollout's policy and the update both see observations as of its start
        preprocess = functools.partial(c.obs_normalizer.apply, obs_stats)
        envs, tr = rollout(c.env, c.policy, state.params, state.env, key_rollout, config.num_steps, preprocess,
                           record=c.objective.record)
        norm, reward = c.reward_scaler(state.norm, tr.reward, tr.done)
        advantages, returns = gae(rewards=reward, values=tr.value, next_values=tr.next_value,
                                  terminations=tr.terminated, dones=tr.done, gamma=config.gamma,
                                  gae_lambda=config.gae_lambda)
        batch = c.policy.batch(tr, preprocess(tr.obs), advantages, returns)
        params, opt_state, metrics = update(
            state.params, state.opt_state, batch, key_update, loss=c.loss(state.kl_beta), policy=c.policy, tx=c.tx,
            epochs=config.update_epochs, num_minibatches=config.num_minibatches, early_stop=c.early_stop)
        # after the update, which trains on what the rollout's policy saw
        norm = norm.replace(obs=c.obs_normalizer.update(obs_stats, tr.obs))
        kl_beta, objective_metrics = c.objective.after_update(
            state.kl_beta, lambda: c.policy.evaluate(params, batch)[0], batch)
        count = state.update_count + 1
        metrics = {**metrics, **objective_metrics,
                   **rollout_metrics(tr.episode_return, tr.episode_length, tr.done, tr.value, returns),
                   "env_steps": count * config.batch_size, "diverged": diverged(metrics, params),
                   "learning_rate": c.schedule(state.update_count * grad_steps_per_update)}
        return TrainState(params=params, opt_state=opt_state, env=place(envs), key=key, update_count=count,
                          norm=norm, kl_beta=kl_beta), metrics

    return Trainer(init, update_step, c)


def checked_trainer(config: PPOConfig, env_sharding: Callable[[Any], Any] | None = None,
                    env: EpisodeStatistics | None = None, network: Any = None) -> Trainer:
    """`make_trainer`'s, with a user's `network` checked against the env's observations: once, here, outside any
    trace (`make_trainer` itself runs inside a sweep's traces, again for each)."""
    trainer = make_trainer(config, env_sharding, env, network)
    if network is not None:
        c = trainer.components
        check_network(c.policy.network, c.env.action_spec, c.env.observation_size)
    return trainer


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
    network: Any = None,
) -> Callable[[jax.Array], TrainOutput]:
    """Builds `train(rng) -> TrainOutput` for `config`.

    `train` is pure and jit-able; `jax.vmap(train)(keys)` trains one run per key. Given a batch of keys `[N]`
    directly, `train` vmaps itself, and `callback` (a host function, e.g. a progress display) is called after
    every update with that update's metrics, each of shape `[]` or `[N]`. `env_sharding`: see `make_trainer`.
    `env`: your own env object (or a function returning one) to train instead of an id; it is registered under
    `config.env`, which names it (`purejaxppo.core.envs.register_env`). Or an env `make_env` made, trained as it is.
    `network`: your own flax module for the feed-forward policy, or a factory `(action_spec, config) -> module`,
    keeping the contract `ActorCritic` keeps (`purejaxppo.core.user_network`, docs/your-network.md); checked
    against the env's observations before anything compiles.
    """
    env = run_env(config.env, config.env_kwargs, env)
    trainer = checked_trainer(config, env_sharding, env, network)

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
