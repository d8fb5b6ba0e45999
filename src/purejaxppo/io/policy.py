"""`load_policy`: a trained run's policy, as a pure function of observations, from its run directory.

    policy = load_policy("runs/CartPole-v1-20250101-120000")   # best configuration, first seed
    action = policy(obs)                    # deterministic: argmax (discrete) or the Gaussian mean (continuous)
    action = policy(obs, key)               # sampled from the policy's distribution
    actions = jax.jit(policy)(obs_batch)    # obs [obs_size] or [B, obs_size]; raw gymnax observations work too
    hidden, action = policy.step(hidden, obs, first)   # a recurrent run's policy, from policy.initial_state()

The policy is read from the run's latest checkpoint (`<run dir>/checkpoints/<updates done>/`, see
`purejaxppo.io.checkpoint`), which holds every run of the sweep on one flat `[runs]` axis, configuration-major: run
`c * num_seeds + s` is configuration `c` with seed `s`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from purejaxppo.core.config import PPOConfig
from purejaxppo.core.envs import ActionSpec, Env, EpisodeStatistics, image_shape_of, make_base_env
from purejaxppo.core.networks import env_action
from purejaxppo.core.normalization import RunningStats, normalize_obs
from purejaxppo.core.policy_kinds import make_policy_kind
from purejaxppo.scale.files import read_json
from purejaxppo.scale.plan import make_plan
from purejaxppo.scale.program import state_template


class Policy:
    """A trained policy: `policy(obs, key=None) -> action`. Pure: `jax.jit` and `jax.vmap` apply to it.

    `obs` is one observation or a batch, flat (`[obs_size]`, `[B, obs_size]`, as `purejaxppo.core.envs`'
    adapters return them) or as the raw gymnax env returns them (`[*obs_shape]`, `[B, *obs_shape]`). Without `key` the
    action is deterministic: the most probable action (discrete) or the Gaussian mean (continuous); with a key it
    is sampled, one independent draw per observation. Continuous actions are clipped to the action bounds.
    Actions are int32 `[...]` (discrete) or float32 `[..., action_size]` (continuous), `...` the batch shape.
    A run trained with `normalize_obs` normalizes observations with the statistics saved with its parameters
    (`obs_stats`), exactly as training did.

    A recurrent run's policy (`config.recurrent`) acts on the episode so far, so it is stepped through episodes
    instead: `hidden = policy.initial_state()`, then `hidden, action = policy.step(hidden, obs, first, key)` at
    every step. `step` takes a feed-forward policy too (its state is empty), so code that runs episodes takes both.
    """

    def __init__(self, config: PPOConfig, params: Any, env: Env, run: int = 0, seed: int = 0,
                 updates_done: int = 0, hyperparams: dict[str, float] | None = None,
                 obs_stats: RunningStats | None = None, network: Any = None):
        if config.normalize_obs and obs_stats is None:
            raise ValueError("the policy of a run with normalize_obs needs its observation statistics")
        self.config = config
        self.params = params
        self.obs_stats = obs_stats if config.normalize_obs else None
        self.env_id = config.env
        self.action_spec: ActionSpec = env.action_spec
        self.observation_shape: tuple[int, ...] = env.observation_shape
        self.observation_size: int = env.observation_size
        self._codec = getattr(env, "codec", None)  # how the env flattens pytree observations (suites, dicts)
        self.run = run  # index on the run directory's flat [runs] axis
        self.seed = seed  # the training seed of that run
        self.updates_done = updates_done  # updates trained when the checkpoint was saved
        self.hyperparams = dict(hyperparams or {})  # the swept hyperparameters' values for this run
        # feed-forward or recurrent; a user's network (`make_train(network=)`) where the run trained one
        self.kind = make_policy_kind(config, env.action_spec, image_shape_of(env), network)
        self.network = self.kind.network

    def __repr__(self) -> str:
        return (f"Policy(env={self.env_id!r}, run={self.run}, seed={self.seed}, "
                f"updates={self.updates_done}/{self.config.num_updates})")

    def flatten(self, obs: jax.Array) -> jax.Array:
        """`obs` as flat float32 `[..., obs_size]`, keeping its batch dimensions. A pytree observation (a dict, a
        suite's NamedTuple) is flattened as the env does in training."""
        if isinstance(obs, (dict, tuple, list)) and self._codec is not None:
            return self._codec.encode_batch(obs)
        obs = jnp.asarray(obs)
        raw = self.observation_shape
        if raw and obs.shape[obs.ndim - len(raw):] == raw:  # raw gymnax observations: flatten the trailing dims
            batch = obs.shape[:obs.ndim - len(raw)]
        elif obs.ndim >= 1 and obs.shape[-1] == self.observation_size:  # already flat
            batch = obs.shape[:-1]
        elif not raw:  # scalar observations: every dimension is a batch dimension
            batch = obs.shape
        else:
            raise ValueError(f"observation of shape {obs.shape} does not fit {self.env_id}: expected "
                             f"[..., {self.observation_size}] or [..., {', '.join(map(str, raw))}]")
        return obs.reshape(batch + (self.observation_size,)).astype(jnp.float32)

    def network_input(self, obs: jax.Array) -> jax.Array:
        """What the network sees of `obs`: flat float32 `[..., obs_size]`, normalized as in training."""
        obs = self.flatten(obs)
        return obs if self.obs_stats is None else normalize_obs(obs, self.obs_stats, self.action_spec.mask_size)

    def distribution(self, obs: jax.Array):
        """The policy's action distribution at `obs` (any shape `__call__` accepts); batch shape `[...]`."""
        if self.config.recurrent:
            raise ValueError("the policy of a recurrent run acts on the episode so far, not on one observation: "
                             "step it with `hidden, action = policy.step(hidden, obs, first, key)` from "
                             "`hidden = policy.initial_state()`")
        return self.kind.act(self.params, self.network_input(obs), None, None).pi

    def __call__(self, obs: jax.Array, key: jax.Array | None = None) -> jax.Array:
        return self._action(self.distribution(obs), key)

    def initial_state(self, batch_shape: tuple[int, ...] = ()) -> Any:
        """The policy's memory before an episode: zeros `[*batch_shape, H]` (recurrent), or `()` (feed-forward)."""
        return self.kind.initial_memory(batch_shape)

    def step(self, hidden: Any, obs: jax.Array, first: jax.Array, key: jax.Array | None = None
             ) -> tuple[Any, jax.Array]:
        """One step of an episode: the memory after `obs` and the action, `(hidden, action)`.

        `hidden` is the memory from `initial_state` or the last step, `[..., H]` (`()` for a feed-forward policy,
        passed through); it is reset where `first` `[...]` (obs is an episode's first). `obs`, `key` and the
        action: as for `__call__`.
        """
        act = self.kind.act(self.params, self.network_input(obs), hidden, jnp.asarray(first, bool))
        return act.hidden, self._action(act.pi, key)

    def _action(self, pi, key: jax.Array | None) -> jax.Array:
        """The action of the distribution `pi`: its mode or mean without `key`, else a sample."""
        if self.action_spec.discrete:
            if key is None:
                return pi.mode().astype(jnp.int32)  # the argmax of each categorical, invalid actions excluded
            return pi.sample(seed=key).astype(jnp.int32)
        action = pi.mean() if key is None else pi.sample(seed=key)
        return env_action(action, self.action_spec)


def load_policy(run_dir: str | Path, run: int | None = None, env: str | None = None, network: Any = None
                ) -> Policy:
    """The policy of run `run` of the run directory `run_dir`, from its latest checkpoint.

    A run of a "package.module:factory" env loads only when `env` names that id too: making the env imports and
    calls that code, which a file alone may not ask for. An `env` that is not the run's env is refused. A run
    trained with a network of your own (`make_train(network=)`) loads with that `network` again.

    `run` indexes the flat runs axis, configuration-major (`run = c * num_seeds + s`). Default: the first seed
    of the best-ranked configuration in summary.json, or run 0 if the run has no summary yet (a run stopped
    before its end: its latest checkpoint is loaded). Raises ValueError, with a one-line message, for a
    directory that is not a run, a missing or corrupt checkpoint, or `run` out of range.
    """
    from purejaxppo.io.checkpoint import Checkpointer  # imports orbax: only when a policy is loaded

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir} is not a directory")
    if not (run_dir / "config.json").is_file() and not (run_dir / "checkpoints").is_dir():
        raise ValueError(f"{run_dir} is not a purejaxppo run: it has no config.json and no checkpoints/")
    checkpointer = Checkpointer(run_dir, allow_env=env)
    return _read_consistently(checkpointer, lambda step: _policy_at(run_dir, checkpointer, step, run, env, network))


ATTEMPTS = 5
"""Reads of a checkpoint that a run rotated away while it was read, before giving up."""


def _read_consistently(checkpointer, read):
    """`read(step)` of the latest checkpoint. A run that is still saving deletes its older checkpoints as it
    writes newer ones: when the step being read disappears under the reader, the newer one is read instead."""
    from purejaxppo.io.checkpoint import CheckpointError

    for _ in range(ATTEMPTS):
        try:
            step = checkpointer.latest()
        except OSError:  # a folder vanished while the steps were listed
            continue
        try:
            return read(step)
        except (CheckpointError, OSError):
            if step is None or (checkpointer.directory / str(step)).is_dir():  # not a rotation: a real error
                raise
    raise CheckpointError(f"the checkpoints in {checkpointer.directory} changed {ATTEMPTS} times while being read "
                          "(a run is saving there): try again, or when the run has ended")


def _policy_at(run_dir: Path, checkpointer, step: int | None, run: int | None, env_id: str | None,
               network: Any = None) -> Policy:
    meta = checkpointer.meta(step)  # CheckpointError (a ValueError) when there is none or it is unreadable
    try:
        config = PPOConfig(**meta["config"])
        seeds = [int(s) for s in meta["seeds"]]
        grid = {name: [float(v) for v in values] for name, values in meta["sweep"].items()}
        plan = make_plan(config, len(seeds), seeds[0], grid)
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise ValueError(f"checkpoint of {run_dir} has invalid metadata ({type(e).__name__}: {e})") from e
    if env_id is not None and env_id != config.env:
        raise ValueError(f"{run_dir} is a run of {config.env}, not of {env_id}: its policy acts only in its own env; "
                         f"leave the env out, or give a run of {env_id}")
    env = make_base_env(config.env, **dict(config.env_kwargs))
    num_configs, num_runs = len(plan.combos), plan.num_runs

    if run is None:
        run = _best_run(run_dir, num_configs, plan.num_seeds)
    if isinstance(run, bool) or not isinstance(run, (int, np.integer)):
        raise ValueError(f"run={run!r} is invalid: must be an integer")
    if not 0 <= run < num_runs:
        shape = f" ({num_configs} configs x {plan.num_seeds} seeds)" if grid else ""
        raise ValueError(f"run {run} is out of range: {run_dir} has {num_runs} run"
                         f"{'s' if num_runs > 1 else ''}{shape}, 0 to {num_runs - 1}")
    run = int(run)

    template = state_template(plan, EpisodeStatistics(env), network)  # the env made once, not again for it
    progress, done = checkpointer.restore(template, meta["done"])  # CheckpointError when corrupt
    params, obs_stats = jax.tree.map(lambda x: jnp.asarray(x[run]), (progress.state.params,
                                                                       progress.state.norm.obs))
    c, s = divmod(run, plan.num_seeds)
    hyperparams = dict(zip(grid, plan.combos[c]))
    config = dataclasses.replace(config, **hyperparams)
    return Policy(config, params, env, run, seeds[s], done, hyperparams, obs_stats, network)


def _best_run(run_dir: Path, num_configs: int, num_seeds: int) -> int:
    """The first seed of the best-ranked configuration in summary.json; 0 when there is no summary."""
    path = run_dir / "summary.json"
    if not path.is_file():
        return 0
    try:
        best = read_json(path)["configs"][0]["config"]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        raise ValueError(f"{path} is unreadable ({type(e).__name__}: {e}); pass the run to load explicitly"
                         ) from None
    if not isinstance(best, int) or not 0 <= best < num_configs:
        raise ValueError(f"{path} ranks configuration {best!r}, which the checkpoint does not have")
    return best * num_seeds
