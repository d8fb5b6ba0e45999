"""purejaxppo.scale.compilation: a CPU device per core for multi-run programs, and the options programs compile with."""

import json
import os
import subprocess
import sys

import jax
import pytest
from conftest import command_limit

import purejaxppo.scale.compilation
from purejaxppo import PPOConfig, Sweep
from purejaxppo.scale.compilation import compiler_options, cpu_cores, use_cpu_cores

DEVICES = """
import json, sys
import jax
from purejaxppo.scale.compilation import use_cpu_cores
first = use_cpu_cores(int(sys.argv[1]) if len(sys.argv) > 1 else None)
jax.numpy.ones(1).block_until_ready()
print(json.dumps([first, use_cpu_cores(), len(jax.devices())]))
"""


def fresh_process(*args: str, xla_flags: str | None = None) -> list:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    env["JAX_PLATFORMS"] = "cpu"
    if xla_flags:
        env["XLA_FLAGS"] = xla_flags
    out = subprocess.run([sys.executable, "-c", DEVICES, *args], capture_output=True, text=True,
                         timeout=command_limit(), env=env, check=True)
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


CONFIG = PPOConfig(env="CartPole-v1", total_timesteps=512)


@pytest.fixture(scope="module")
def two_runs():
    """A sweep of CONFIG over 2 seeds, compiled (one compile, which both tests below read), and the seconds it
    took."""
    job = Sweep(CONFIG, num_seeds=2)
    return job, job.compile()


@pytest.mark.slow
def test_sweeps_compile_with_the_compiler_options(monkeypatch, two_runs):
    """The options reach XLA: an option XLA does not know makes the sweep's compilation fail, and the CPU's options
    (LLVM -O2, copy insertion by region, products on the calling thread) compile, less what the user's XLA_FLAGS
    set (the tests' own flags among them: the Makefile's quick compiles)."""
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    assert jax.default_backend() == "cpu" and compiler_options() == {
        "xla_backend_optimization_level": 2, "xla_cpu_copy_insertion_use_region_analysis": True,
        "xla_cpu_multi_thread_eigen": False}
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_max_isa=AVX2 --xla_backend_optimization_level=0")
    assert compiler_options() == {"xla_cpu_copy_insertion_use_region_analysis": True,
                                  "xla_cpu_multi_thread_eigen": False}
    _, seconds = two_runs
    assert seconds > 0
    monkeypatch.setattr(purejaxppo.scale.compilation, "CPU_COMPILER_OPTIONS", {"xla_no_such_option": 1})
    with pytest.raises(Exception, match="xla_no_such_option"):
        Sweep(CONFIG).compile()


@pytest.mark.slow
def test_a_sweep_uses_no_more_devices_than_it_has_runs(two_runs):
    assert Sweep(CONFIG, num_seeds=1).mesh.size == 1
    assert Sweep(CONFIG, num_seeds=1, devices=jax.devices()).mesh.size == len(jax.devices())  # as asked
    job, _ = two_runs
    assert job.mesh.size == min(2, len(jax.devices()))
    result = job.run()
    assert result.metrics["episode_return"].shape[:2] == (1, 2)  # every run, none of the padding
