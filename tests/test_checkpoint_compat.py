"""Checkpoints written before the package was reorganized into layers (checkpoint format 1, stored in
`tests/data/format1_runs/`: a CartPole run and a recurrent MemoryChain run, each stopped at update 6 of 8) still
resume, and finish with the very metrics the original run wrote."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import read_metrics

DATA = Path(__file__).parent / "data" / "format1_runs"

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("run", ["ff", "rec"])
def test_a_format_1_checkpoint_resumes_to_the_same_metrics(tmp_path, run):
    shutil.copytree(DATA / run / "checkpoints", tmp_path / "checkpoints")
    result = subprocess.run([sys.executable, "-m", "purejaxppo.run", "--resume", str(tmp_path), "--quiet"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "resumed from" in result.stdout and "at update 6/8" in result.stdout
    rows, expected = read_metrics(tmp_path / "metrics.csv"), read_metrics(DATA / run / "expected_metrics.csv")
    assert [{k: v for k, v in row.items() if k != "diverged"} for row in rows] == expected  # every value, as text
    assert {row["diverged"] for row in rows} == {"0"}  # the metric the format added, read back as zeros
