"""A hang fails the suite within a limit instead of stalling it, and a hung run can be stopped.

jaxlib 0.10.0-0.11.0 deadlock when QR decompositions (flax's orthogonal initializer), vmapped over seeds, run
sharded over two CPU devices with at least two runs per device: both worker threads wait inside LAPACK's batched
QR for good. The guards below run that case in a subprocess that is killed (SIGKILL) at its limit, so a bad
jaxlib fails them in that time rather than hanging. Each limit is a multiple of the calibration run
(`conftest.calibration`: Python started, JAX imported, a small program compiled, on this machine as loaded now),
generous beside what the guarded command takes: they bound a hang on a slow or busy machine as on a fast one, they
do not time the code.
"""

import signal
import subprocess
import sys
from importlib.metadata import version

import pytest
from conftest import cli_env, limit, xla_flags

pytestmark = pytest.mark.portable

REPRODUCER = """
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
assert jax.device_count() == 2, jax.devices()
runs = NamedSharding(Mesh(np.array(jax.devices()), ("runs",)), PartitionSpec("runs"))
keys = jax.device_put(jax.random.split(jax.random.key(0), 4), runs)
def two_layers(key):  # one QR alone does not deadlock; two in one program do
    return [jnp.linalg.qr(jax.random.normal(k, (64, 64)))[0] for k in jax.random.split(key)]
layers = np.asarray(jax.jit(jax.vmap(two_layers))(keys))
print("orthogonal:", all(np.abs(m.T @ m - np.eye(64)).max() < 1e-4 for m in layers.reshape(-1, 64, 64)))
"""
"""The smallest program found that deadlocks on the bad jaxlibs: a jit of a vmap, over keys sharded on 2 devices
(two per device), of two 64x64 QRs."""

REPRODUCER_LIMIT = 20
CLI_LIMIT = 80
SECOND_SIGNAL_LIMIT = 40
"""Calibration runs each may take (the reproducer is about 2, the CLI's 4 seeds about 5, a process's exit 1)."""


def _two_devices() -> dict[str, str]:
    """This environment with two CPU devices (XLA flags that set another count left out)."""
    env = cli_env(JAX_NUM_CPU_DEVICES="2", JAX_PLATFORMS="cpu")  # the CPU's devices even where a GPU is
    env["XLA_FLAGS"] = xla_flags()
    return env


def _run_killed_at(runs: float, command: list[str]) -> subprocess.CompletedProcess:
    seconds = limit(runs)
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=seconds, env=_two_devices())
    except subprocess.TimeoutExpired:  # subprocess.run has killed it with SIGKILL
        pytest.fail(f"hung for {seconds:.0f} s ({runs} calibration runs) and was killed: jaxlib {version('jaxlib')} "
                    "deadlocks in a batched QR over "
                    "2 CPU devices; install a supported version (docs/install.md)")


def test_a_vmapped_qr_sharded_over_two_cpu_devices_finishes():
    result = _run_killed_at(REPRODUCER_LIMIT, [sys.executable, "-c", REPRODUCER])
    assert result.returncode == 0, result.stderr
    assert "orthogonal: True" in result.stdout


@pytest.mark.slow
def test_the_cli_spreading_four_seeds_over_two_cpu_devices_finishes(tmp_path):
    out = tmp_path / "run"
    result = _run_killed_at(CLI_LIMIT, [
        sys.executable, "-m", "purejaxppo.run", "--env", "CartPole-v1", "--num-seeds", "4", "--num-envs", "4",
        "--num-steps", "32", "--num-minibatches", "2", "--total-timesteps", str(4 * 32 * 2), "--quiet",
        "--no-compile-cache", "--out", str(out)])
    assert result.returncode == 0, result.stderr
    assert "4 runs on 2 cpu device(s)" in result.stdout
    assert (out / "summary.json").is_file()


HANG = """
import jax, jax.numpy as jnp
from purejaxppo.scale.sweep import Sweep
def advance_forever(self, state, updates):
    print("hanging", flush=True)
    forever = jax.jit(lambda n: jax.lax.while_loop(lambda c: c != -1, lambda c: (c + 1) % 7, n))
    return jax.block_until_ready(forever(jnp.int32(0)))  # the main thread waits inside XLA, never in Python
Sweep.advance = advance_forever
"""


def _read_until(stream, start: str) -> None:
    for line in stream:
        if line.startswith(start):
            return
    pytest.fail(f"the command ended before printing {start!r}")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])  # SIGHUP as SIGTERM: test_faults.py
def test_a_hung_run_ends_at_once_on_a_second_signal(tmp_path, name):
    script = f"{HANG}\nimport sys\nfrom purejaxppo.cli.run import main\nsys.exit(main(sys.argv[1:]))\n"
    command = [sys.executable, "-c", script, "--env", "CartPole-v1", "--total-timesteps", "4096",
               "--no-compile-cache", "--out", str(tmp_path / "run")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    try:
        _read_until(process.stdout, "hanging")  # waits for the hang to begin, not for a time
        process.send_signal(getattr(signal, name))  # asks for a stop after the chunk, which never ends
        _read_until(process.stdout, f"{name}: stopping at the end of this chunk of updates")  # not merged with the next
        process.send_signal(getattr(signal, name))
        code = process.wait(timeout=limit(SECOND_SIGNAL_LIMIT))
    finally:
        process.kill()
    stderr = process.stderr.read()
    assert code == 128 + getattr(signal, name), stderr
    (line,) = stderr.strip().splitlines()
    assert line.startswith(f"stopped at once by a second {name}: ") and f"--resume {tmp_path / 'run'}" in line
