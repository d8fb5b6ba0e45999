"""Spreading training over devices and hosts with `jax.sharding` (a Mesh and NamedShardings under jit).

Two kinds of parallelism:
- many independent runs (configurations x seeds): their flat `[runs]` axis is split over every device of every
  process (`runs_sharding`, `shard_rows`, `gather`); no run talks to another, so each device's share is computed
  exactly as it would be alone;
- one large run (`env_sharding`, used by `Sweep(data_parallel=True)` and `make_data_parallel_train`): its
  `num_envs` envs are split over the devices and XLA's SPMD partitioner runs each device's share of the rollout
  and the minibatch gradients, then sums the gradient across devices in an all-reduce: the gradient of the mean
  loss over the whole minibatch, so parameters stay identical (replicated) on every device and equal a
  one-device run's up to float rounding.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from purejaxppo.core.config import PPOConfig
from purejaxppo.core.train import TrainOutput, make_train
from purejaxppo.scale.compilation import compiler_options


def runs_sharding(devices: Sequence[jax.Device] | None = None, num_runs: int | None = None) -> NamedSharding:
    """A leading `[runs]` axis split over a one-axis mesh named "runs" (its `.mesh`) of `devices` (default: every
    device of every process; in one process, no more of them than `num_runs`, so that no device computes only
    padding)."""
    if devices is None:
        devices = jax.devices()
        if num_runs is not None and jax.process_count() == 1:
            devices = devices[:num_runs]
    return NamedSharding(Mesh(np.asarray(devices), ("runs",)), PartitionSpec("runs"))


def pad_rows(tree: Any, multiple: int) -> Any:
    """Pads every leaf's leading axis to a multiple of `multiple` by repeating its first row."""
    def pad(x):
        extra = -x.shape[0] % multiple
        return np.concatenate([x, np.repeat(x[:1], extra, axis=0)]) if extra else x
    return jax.tree.map(pad, tree)


def shard_rows(tree: Any, sharding: NamedSharding) -> Any:
    """Host (numpy) arrays -> global jax arrays laid out by `sharding` (e.g. rows split over a "runs" axis).

    Every process passes the same full arrays and contributes the parts on its own devices.
    """
    return jax.tree.map(lambda x: jax.make_array_from_callback(x.shape, sharding, lambda index: x[index]), tree)


def gather(tree: Any) -> Any:
    """Global jax arrays -> full numpy arrays on every process."""
    if jax.process_count() > 1:
        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)


def env_sharding(config: PPOConfig, devices: Sequence[jax.Device] | None = None) -> tuple[Mesh, Callable]:
    """A mesh over `devices` (default: all local ones) with one axis "envs", and the sharding constraint that
    splits a `[num_envs, ...]` env batch over it (`make_trainer`'s `env_sharding`).

    Raises ValueError when `num_envs` does not divide evenly over the devices.
    """
    devices = list(devices if devices is not None else jax.local_devices())
    if config.num_envs % len(devices):
        raise ValueError(f"PPOConfig.num_envs={config.num_envs} is invalid for data parallelism: must be a "
                         f"multiple of the {len(devices)} devices")
    mesh = Mesh(np.asarray(devices), ("envs",))
    envs = NamedSharding(mesh, PartitionSpec("envs"))
    return mesh, lambda tree: jax.lax.with_sharding_constraint(tree, envs)


def make_data_parallel_train(
    config: PPOConfig,
    devices: Sequence[jax.Device] | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> Callable[[jax.Array], TrainOutput]:
    """`make_train(config)` for one run whose envs are split evenly over `devices` (see `env_sharding`).

    Returns a jitted `train(rng)`.
    """
    mesh, shard_envs = env_sharding(config, devices)
    replicated = NamedSharding(mesh, PartitionSpec())
    return jax.jit(make_train(config, callback, env_sharding=shard_envs), in_shardings=replicated,
                   compiler_options=compiler_options())
