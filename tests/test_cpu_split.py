"""purejaxppo.scale.cpu_split: runs go over a CPU's cores only where a cached measurement says the split pays.

JAX fixes its device count when its backend starts, so each case runs in a fresh process that makes its devices
with `use_cpu_cores(2)` (or, as a user would, with XLA_FLAGS) and reads a cache file in its own folder.
"""

import json
import os
import subprocess
import sys

import pytest
from conftest import command_limit
from conftest import xla_flags as inherited_xla_flags

SCRIPT = """
import json, sys
from pathlib import Path
from purejaxppo.scale.compilation import use_cpu_cores
use_cpu_cores(2)
import jax
from purejaxppo.scale import cpu_split
results = []
for path, speedup in json.loads(sys.argv[1]):  # each case: a cache file, and the speedup to store in it first
    path = Path(path)
    if speedup is not None:
        entry = {cpu_split.machine_key(2): speedup}
        path.write_text(json.dumps({"format": cpu_split.CACHE_FORMAT, "speedups": entry}))
    devices = cpu_split.run_devices(4, path)
    results.append({"devices": None if devices is None else len(devices), "all": len(jax.devices()),
                    "made": cpu_split.made_cpu_devices(), "single": cpu_split.run_devices(1, path)})
print(json.dumps(results))
"""
pytestmark = [pytest.mark.slow, pytest.mark.portable]  # fresh processes, each measuring this machine

CORRUPT = ["{not json", '{"format": 99, "speedups": {}}', '{"format": 1, "speedups": 3}', "[1, 2]"]


def run(cases: list, xla_flags: str = "") -> list[dict]:
    env = {**os.environ, "XLA_FLAGS": inherited_xla_flags(xla_flags), "JAX_PLATFORMS": "cpu"}
    env.pop("JAX_NUM_CPU_DEVICES", None)
    out = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps([[str(p), v] for p, v in cases])],
                         capture_output=True, text=True, env=env, timeout=command_limit())
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_runs_split_over_the_cores_only_where_the_measurement_says_it_pays(tmp_path):
    """A cached speedup decides; a cache that is missing, unreadable or of another format is measured again and
    rewritten (JSON only, never executed)."""
    corrupt = [tmp_path / f"corrupt{i}.json" for i in range(len(CORRUPT))]
    for path, content in zip(corrupt, CORRUPT):
        path.write_text(content)
    cached = run([(tmp_path / "pays.json", 1.9), (tmp_path / "not.json", 1.05), (tmp_path / "missing.json", None),
                  *[(path, None) for path in corrupt]])
    assert cached[:2] == [{"devices": 2, "all": 2, "made": True, "single": None},
                          {"devices": 1, "all": 2, "made": True, "single": None}]
    for path, result in zip([tmp_path / "missing.json", *corrupt], cached[2:]):
        stored = json.loads(path.read_text())
        assert stored["format"] == 1 and len(stored["speedups"]) == 1
        speedup = next(iter(stored["speedups"].values()))
        assert 0 < speedup < 10  # n * t1 / tn of two devices: about 2 where the cores run apart, 1 where they do not
        assert result["devices"] == (2 if speedup >= 1.4 else 1) and result["made"]


def test_a_device_count_the_user_set_is_used_as_set_without_measuring(tmp_path):
    result = run([(tmp_path / "not.json", 1.05)], xla_flags="--xla_force_host_platform_device_count=3")
    assert result == [{"devices": None, "all": 3, "made": False, "single": None}]
