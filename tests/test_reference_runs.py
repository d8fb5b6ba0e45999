"""The stored reference runs (`tests/reference_runs.py`) reproduce bit for bit: metrics and final parameters."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent

pytestmark = pytest.mark.slow


def test_reference_runs_are_bit_identical(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_NUM_CPU_DEVICES"] = "2"  # the sweep's runs split over two devices, as the CLI splits them
    subprocess.run([sys.executable, str(HERE / "reference_runs.py"), str(tmp_path / "now.npz")], env=env,
                   check=True, timeout=300)
    stored, now = np.load(HERE / "data" / "reference_runs.npz"), np.load(tmp_path / "now.npz")
    added = {name for name in set(now.files) - set(stored.files) if name.endswith("/diverged")}  # a later metric
    assert sorted(now.files) == sorted(set(stored.files) | added)
    assert not any(now[name].any() for name in added)
    differ = [k for k in stored.files if not np.array_equal(stored[k], now[k], equal_nan=True)
              or stored[k].dtype != now[k].dtype]
    assert not differ, f"not bit-identical to the stored references: {differ[:10]}"
