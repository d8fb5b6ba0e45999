"""Joining a multi-process (multi-host) JAX program. Imports nothing that touches a JAX backend."""

from __future__ import annotations

import jax


def initialize_distributed(coordinator: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
    """Joins this process to a multi-process JAX program; afterwards `jax.devices()` lists every process's.

    With no arguments JAX reads the cluster's environment (SLURM, Open MPI, Kubernetes, ...). Must run before
    any JAX computation, and so before `purejaxppo.core.envs` (gymnax computes on import). On CPU, cross-process
    collectives use gloo.
    """
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                               process_id=process_id)
