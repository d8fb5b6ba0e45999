"""Whether a program's largest buffers fit in a device's memory, estimated before anything compiles.

The estimate counts what grows with the batch: a rollout's transitions (observations, actions and a dozen
scalars per step, recorded and then copied into the update's batch), the critic's activations over the whole
rollout, and the envs' states, for every run a device holds; and what grows with the updates: each run's
metrics, one value per metric and update, held on the device and copied to the host. It leaves out what is small
(parameters, optimizer state) and rounds nothing up, so it errs low: a run it refuses would not have fit, and one
it lets through can still fail when XLA's temporaries add more.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import jax
import numpy as np

from purejaxppo.core.metrics import METRICS

FLOAT = 4  # bytes: float32 and int32 throughout


def env_state_bytes(env: Any) -> int:
    """One env's state and observation, from the shapes its reset returns (traced, not run)."""
    shapes = jax.eval_shape(env.reset, jax.random.key(0))
    return sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(shapes))


def training_bytes(config: Any, env: Any, runs_per_device: int, objective_metrics: int) -> int:
    """The estimate, in bytes, of one device's share of a sweep of `config` on `env` whose objective adds
    `objective_metrics` metrics of its own (the KL penalty's two)."""
    transitions = config.num_envs * config.num_steps
    obs, actions = env.observation_size, env.action_spec.size
    per_transition = FLOAT * (3 * obs + 2 * actions + 12)  # recorded, preprocessed into the batch, its minibatch
    activations = FLOAT * 2 * sum(config.hidden_sizes)  # the critic over [T + 1, B] (actor and critic torsos)
    names = len(METRICS) + objective_metrics
    metrics = 2 * FLOAT * names * config.num_updates  # the device's buffer and the host's copy
    per_run = transitions * (per_transition + activations) + config.num_envs * 2 * env_state_bytes(env) + metrics
    return runs_per_device * per_run


def available_bytes(device: jax.Device) -> int | None:
    """What `device` has free: a GPU's or TPU's allocator limit less what it holds, on a CPU the memory the OS
    reports available (or the cgroup's limit, if lower). None where neither is known."""
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    if device.platform != "cpu":
        return None
    free = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        limit, used = (Path("/sys/fs/cgroup", name).read_text().strip() for name in ("memory.max", "memory.current"))
        if limit != "max":
            free = min(free or math.inf, int(limit) - int(used))
    except (OSError, ValueError):
        pass
    return free


def check_fits(needed: int, device: jax.Device, what: str, lower: str) -> None:
    """Raises ValueError (one line, with the estimate and what is available) when `needed` bytes of `what`
    cannot fit on `device`; `lower` names what to lower."""
    free = available_bytes(device)
    if free is not None and needed > free:
        raise ValueError(f"{what} needs about {needed / 2**30:.1f} GiB, more than the {max(free, 0) / 2**30:.1f} "
                         f"GiB available on {device.platform}:{device.id}: lower {lower}")


def check_sweep_fits(trainer: Any, config: Any, placement: Any, num_runs: int, data_parallel: bool = False) -> None:
    """A sweep of `num_runs` runs of `config` by `trainer` (`core.train.make_trainer`'s: its env and objective,
    made once) whose batches cannot fit in the memory of `placement`'s devices (`purejaxppo.scale.program.Placement`)
    is a ValueError now, not an allocation failure after compiling. A CPU's devices share one memory: all of its
    runs count against it."""
    env, objective = trainer.components.env, trainer.components.objective
    local_devices = [d for d in placement.mesh.devices.flat if d.process_index == jax.process_index()]
    device, local = local_devices[0], len(local_devices)
    runs = num_runs if device.platform == "cpu" else -(-placement.multiple // local)
    needed = training_bytes(config, env, 1 if data_parallel else runs, len(objective.metrics))
    if data_parallel and device.platform != "cpu":
        needed //= local
    check_fits(needed, device, f"training {runs} run(s) of {config.num_envs} envs x {config.num_steps} steps",
               "--num-envs, --num-steps or --num-seeds")


def evaluation_bytes(env: Any, episodes: int, memory_size: int = 0) -> int:
    """The estimate, in bytes, of `episodes` envs stepped at once: each env's state (twice: before and after a
    step), its observations and the policy's memory and activations."""
    return episodes * (2 * env_state_bytes(env) + FLOAT * (4 * env.observation_size + memory_size + 64))
