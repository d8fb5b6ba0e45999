"""purejaxppo.compilation: a CPU device per core for multi-run programs, and the options programs compile with."""

import json
import os
import subprocess
import sys

import jax
import numpy as np

from purejaxppo import PPOConfig, Sweep
from purejaxppo.compilation import compiler_options, cpu_cores, use_cpu_cores

DEVICES = """
import json, sys
import jax
from purejaxppo.compilation import use_cpu_cores
first = use_cpu_cores(int(sys.argv[1]) if len(sys.argv) > 1 else None)
jax.numpy.ones(1).block_until_ready()
print(json.dumps([first, use_cpu_cores(), len(jax.devices())]))
"""


def fresh_process(*args: str, xla_flags: str | None = None) -> list:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    env["JAX_PLATFORMS"] = "cpu"
    if xla_flags:
        env["XLA_FLAGS"] = xla_flags
    out = subprocess.run([sys.executable, "-c", DEVICES, *args], capture_output=True, text=True, timeout=120,
                         env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_use_cpu_cores_makes_a_device_per_core_before_the_first_computation_only():
    assert fresh_process() == [True, False, cpu_cores()]  # the second call comes after a computation
    assert fresh_process("3") == [True, False, 3]


def test_use_cpu_cores_leaves_a_device_count_the_user_set():
    assert fresh_process(xla_flags="--xla_force_host_platform_device_count=5") == [False, False, 5]


def test_in_a_process_that_has_computed_the_devices_stay():
    before = jax.devices()
    assert use_cpu_cores(7) is False
    assert jax.devices() == before


def test_cpu_programs_compile_at_llvm_o2():
    assert jax.default_backend() == "cpu"
    assert compiler_options() == {"xla_backend_optimization_level": 2}


def test_a_sweep_uses_no_more_devices_than_it_has_runs():
    config = PPOConfig(env="CartPole-v1", total_timesteps=512)
    assert Sweep(config, num_seeds=1).mesh.size == 1
    assert Sweep(config, num_seeds=1, devices=jax.devices()).mesh.size == len(jax.devices())  # as asked
    job = Sweep(config, num_seeds=2)
    assert job.mesh.size == min(2, len(jax.devices()))
    result = job.run()
    assert result.metrics["episode_return"].shape[:2] == (1, 2)  # every run, none of the padding
