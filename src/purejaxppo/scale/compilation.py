"""How purejaxppo's programs are compiled and spread over a CPU's cores. Imports nothing that starts a backend.

On a CPU a training program is many small kernels run one after another on one thread (benchmarks/README.md):
XLA's intra-op threads rarely help, so a multi-run program uses the other cores only when they are separate
XLA devices over which its runs are split (`Sweep` does this over every device).
"""

from __future__ import annotations

import os

import jax

CPU_COMPILER_OPTIONS = {
    # LLVM's -O2 rather than XLA's default -O3: a training program compiles faster on CPU and runs as fast.
    "xla_backend_optimization_level": 2,
    # Copy insertion that sees through loop regions: fewer copies of the loop state at each step of a scan.
    "xla_cpu_copy_insertion_use_region_analysis": True,
    # Each matrix product on the calling thread: a PPO program's products are small (a minibatch by 64), and
    # handing them to Eigen's thread pool costs more than it saves; large ones run as fast either way.
    "xla_cpu_multi_thread_eigen": False,
}
"""XLA's options for a training program on CPU; what each gains is measured in benchmarks/README.md."""


def compiler_options() -> dict[str, int | bool]:
    """The XLA options to compile a training program with on the default backend: `jax.jit(f,
    compiler_options=compiler_options())`. `CPU_COMPILER_OPTIONS` on CPU, less any option the user sets in
    `XLA_FLAGS` (a program's options would override the user's flags); none elsewhere."""
    if jax.default_backend() != "cpu":
        return {}
    flags = os.environ.get("XLA_FLAGS", "")
    return {name: value for name, value in CPU_COMPILER_OPTIONS.items() if f"--{name}=" not in flags}


def cpu_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it, else the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def use_cpu_cores(count: int | None = None) -> bool:
    """Makes the CPU backend `count` devices (default: one per core), so that runs split over devices run on
    separate cores. Must come before JAX's first computation (importing gymnax computes), and leaves a device
    count set by the user (`XLA_FLAGS=--xla_force_host_platform_device_count`, `JAX_NUM_CPU_DEVICES`) alone.

    Returns whether the count was set: False when the user set it or JAX has computed already.
    """
    user_set = "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
    if user_set or jax.config.jax_num_cpu_devices > 0:
        return False
    try:
        jax.config.update("jax_num_cpu_devices", count or cpu_cores())
    except RuntimeError:  # the backends exist already (an earlier computation in this process): keep them
        return False
    _MADE[0] = jax.config.jax_num_cpu_devices
    return True


_MADE = [0]  # the CPU device count use_cpu_cores set in this process; 0 where it set none


def made_cpu_devices() -> bool:
    """Whether `use_cpu_cores` set this process's CPU device count (the user did not)."""
    return _MADE[0] > 0 and jax.config.jax_num_cpu_devices == _MADE[0]
