"""The stored reference runs (`tests/reference_runs.py`, written on the development machine with jax 0.9.2) are
reproduced here, on whatever processor and supported jax version this is.

Bit for bit only holds on the machine that wrote them: XLA's CPU code, and with it the floats' rounding, differs
between processors (AVX-512 or not, FMA contraction) and between jax versions, and the differences compound as a
run goes on, fastest in continuous control (Pendulum's chaotic swing). So each metric is compared to a tolerance
relative to its scale (its largest magnitude in the stored run): tightly in the first update, which starts from
the initial parameters, more loosely in the second, and each final parameter array by the RMS of its difference.

Seen here (2-core x86-64 with AVX-512, jax 0.9.2) under an ISA limit, and on jax 0.11.2 (fractions of the scale):

| | first update | second update | final parameters (RMS) |
|---|---|---|---|
| `XLA_FLAGS=--xla_cpu_max_isa=AVX2` | 3e-5 | 4e-5 | 8e-5 |
| `XLA_FLAGS=--xla_cpu_max_isa=SSE4_2` | 1e-4 | 8e-3 (Pendulum) | 4e-2 (Pendulum) |
| jax 0.11.2, Python 3.12 | 4e-5 | 2e-4 | 5e-4 |

The tolerances below leave a margin of 5-10x over the worst of these. Bit-identity is asserted only between runs
of one installation (resume against uninterrupted in `test_faults.py`, sharded against one device in
`test_parallel.py`, a sweep's row against its run alone in `test_sweep.py`).
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import command_limit, xla_flags

HERE = Path(__file__).parent
FIRST_UPDATE, SECOND_UPDATE, FINAL_PARAMETERS = 1e-3, 5e-2, 0.2
"""Tolerances, as fractions of each array's scale."""

pytestmark = [pytest.mark.slow, pytest.mark.portable]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[np.lib.npyio.NpzFile, np.lib.npyio.NpzFile]:
    """(stored, now): the references as stored, and as this installation computes them in a fresh process."""
    # the sweep's runs split over two CPU devices, as the CLI splits them
    env = dict(os.environ, JAX_NUM_CPU_DEVICES="2", JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = xla_flags()  # keeps an ISA limit, say
    now = tmp_path_factory.mktemp("reference") / "now.npz"
    subprocess.run([sys.executable, str(HERE / "reference_runs.py"), str(now)], env=env, check=True,
                   timeout=command_limit())
    return np.load(HERE / "data" / "reference_runs.npz"), np.load(now)


def test_the_same_arrays_come_out(runs):
    stored, now = runs
    added = {name for name in set(now.files) - set(stored.files) if name.endswith("/diverged")}  # a later metric
    assert sorted(now.files) == sorted(set(stored.files) | added)
    assert not any(now[name].any() for name in added)
    for name in stored.files:
        assert (now[name].shape, now[name].dtype) == (stored[name].shape, stored[name].dtype), name


def _within(now: np.ndarray, stored: np.ndarray, scale: float, fraction: float, name: str) -> None:
    np.testing.assert_allclose(now, stored, rtol=0, atol=fraction * scale, equal_nan=True, err_msg=name)


def test_every_metric_of_the_first_two_updates_matches_to_a_tolerance(runs):
    stored, now = runs
    metrics = [name for name in stored.files if "/params/" not in name]
    assert len(metrics) > 50
    for name in metrics:
        finite = np.abs(stored[name][np.isfinite(stored[name])])
        scale = max(float(finite.max()), 1e-12) if finite.size else 1.0
        _within(now[name][..., 0], stored[name][..., 0], scale, FIRST_UPDATE, f"{name}, first update")  # [..., U]
        _within(now[name][..., 1], stored[name][..., 1], scale, SECOND_UPDATE, f"{name}, second update")


def test_every_final_parameter_array_matches_to_a_tolerance(runs):
    stored, now = runs
    params = [name for name in stored.files if "/params/" in name]
    assert len(params) > 40
    for name in params:
        rms = lambda x: float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
        assert rms(now[name] - stored[name]) <= FINAL_PARAMETERS * rms(stored[name]), name
