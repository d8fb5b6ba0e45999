"""Whether several runs split over a CPU's cores (one XLA device each) finish sooner than on one device.

It depends on the machine: on one 2-core machine 8 CartPole seeds took 0.80x the wall time split, on another of
the same kind they took as long (benchmarks/README.md). So where `use_cpu_cores` made the devices, a sweep
measures it, once per machine, with a small program shaped like training (a loop of small matrix products and
random draws, vmapped over runs), and caches the figure in a JSON file; where the split does not pay, the runs
stay on the first device. Results do not depend on the placement: each run computes alone either way.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from purejaxppo.scale.compilation import compiler_options, cpu_cores, made_cpu_devices

PAYS_FROM = 1.4
"""The split is used where the devices together do at least this many times one device's work (`measure`): a
smaller gain is within what a shared machine's noise moves (two cores measured 2.2-2.6 here, the same process held
to one core 1.2)."""

CACHE_FORMAT = 1


def cache_path() -> Path:
    """`$PUREJAXPPO_CACHE/cpu_split.json` where that is set (the commands' cache folder), else
    `$XDG_CACHE_HOME/purejaxppo/cpu_split.json` (default `~/.cache/...`)."""
    if os.environ.get("PUREJAXPPO_CACHE"):
        return Path(os.environ["PUREJAXPPO_CACHE"]) / "cpu_split.json"
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "purejaxppo" / "cpu_split.json"


def machine_key(num_devices: int) -> str:
    """What the measurement depends on: the processor, the cores and devices, JAX's version and XLA's flags."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    parts = [cpu, platform.machine(), str(cpu_cores()), str(num_devices), jax.__version__,
             os.environ.get("XLA_FLAGS", "")]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _work(key: jax.Array) -> jax.Array:
    """One run's stand-in for training, `[4, 64]` state: 128 steps of two small products, a tanh and a draw."""
    w = jax.random.normal(key, (2, 64, 64)) / 8.0

    def step(x, k):
        h = jnp.tanh(x @ w[0])
        return x + 0.1 * (h @ w[1]) + 0.01 * jax.random.normal(k, x.shape), None

    return jax.lax.scan(step, jnp.ones((4, 64)), jax.random.split(key, 128))[0].sum()


def measure(devices: Sequence[jax.Device], repeats: int = 3) -> float:
    """How many times the work of one device `devices` do together: `n * t1 / tn`, where t1 is one device's time
    for 4 runs of `_work` and tn the time of `4 * n` runs split over the `n` devices (median of `repeats`
    alternating pairs, after one to warm up). n where the cores run apart; 1 where they share one core's time (a
    busy or oversubscribed machine, or hyperthreads of one core). Takes about a second."""
    programs = []
    for group in (devices[:1], devices):
        rows = NamedSharding(Mesh(np.asarray(group), ("runs",)), PartitionSpec("runs"))
        program = jax.jit(jax.vmap(lambda k: _work(jax.random.wrap_key_data(k))), in_shardings=rows,
                          compiler_options=compiler_options())
        keys = jax.random.key_data(jax.random.split(jax.random.key(0), 4 * len(group)))
        args = jax.device_put(keys, rows)
        programs.append((program.lower(args).compile(), args))
    speedups = []
    for _ in range(repeats + 1):  # the first pair warms up
        seconds = []
        for compiled, args in programs:
            start = time.perf_counter()
            jax.block_until_ready(compiled(args))
            seconds.append(time.perf_counter() - start)
        speedups.append(len(devices) * seconds[0] / seconds[1])
    return statistics.median(speedups[1:])


def _read(path: Path) -> dict:
    """The cache's entries; none where the file is missing, unreadable or not this format (it is measured again)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    ok = isinstance(data, dict) and data.get("format") == CACHE_FORMAT and isinstance(data.get("speedups"), dict)
    return {k: v for k, v in data["speedups"].items() if isinstance(v, (int, float))} if ok else {}


def cached_speedup(num_devices: int, path: Path | None = None) -> float | None:
    """What the cache holds for this machine with `num_devices` devices; None where it holds nothing."""
    return _read(path or cache_path()).get(machine_key(num_devices))


def split_speedup(devices: Sequence[jax.Device], path: Path | None = None) -> float:
    """`measure(devices)` for this machine, from the cache where it holds one, else measured and cached."""
    path = path or cache_path()
    key = machine_key(len(devices))
    speedups = _read(path)
    if key not in speedups:
        speedups[key] = measure(devices)
        try:  # a cache that cannot be written only means measuring again next time
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"format": CACHE_FORMAT, "speedups": speedups}, indent=1))
            os.replace(tmp, path)
        except OSError:
            pass
    return float(speedups[key])


def run_devices(num_runs: int, path: Path | None = None) -> list[jax.Device] | None:
    """The devices `num_runs` runs go to where `use_cpu_cores` made this process's CPU devices: all of them (up to
    `num_runs`) where the split pays on this machine, else the first. None (the sweep's default: every device)
    where the user set the device count, on another platform, in a multi-process program, or for a single run."""
    devices = jax.local_devices()[:num_runs]
    if not made_cpu_devices() or jax.default_backend() != "cpu" or jax.process_count() > 1 or len(devices) < 2:
        return None
    return devices if split_speedup(devices, path) >= PAYS_FROM else devices[:1]
