"""Checkpoints written before the package was reorganized into layers (checkpoint format 1, stored in
`tests/data/format1_runs/`: a CartPole run and a recurrent MemoryChain run, each stopped at update 6 of 8) still
resume, and finish with the metrics the original run wrote: the six restored from the checkpoint as they were
written, the two trained after it to float tolerance, since XLA's CPU code, and so its rounding, differs between
processors and jax versions (`tests/test_reference_runs.py` says more). The command is called in this process
(`conftest.run_main`): what is tested is what it reads, not how it starts."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import read_metrics, run_main

DATA = Path(__file__).parent / "data" / "format1_runs"

pytestmark = [pytest.mark.slow, pytest.mark.portable]


@pytest.mark.parametrize("run", ["ff", "rec"])
def test_a_format_1_checkpoint_resumes_to_the_same_metrics(tmp_path, run):
    shutil.copytree(DATA / run / "checkpoints", tmp_path / "checkpoints")
    result = run_main("--resume", str(tmp_path), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "resumed from" in result.stdout and "at update 6/8" in result.stdout
    rows, expected = read_metrics(tmp_path / "metrics.csv"), read_metrics(DATA / run / "expected_metrics.csv")
    rows_without_new = [{k: v for k, v in row.items() if k != "diverged"} for row in rows]
    assert len(rows) == len(expected) == 8 and rows_without_new[0].keys() == expected[0].keys()
    assert rows_without_new[:6] == expected[:6]  # restored: every value as the original run wrote it
    for row, original in zip(rows_without_new[6:], expected[6:]):  # trained again here
        for name, value in original.items():
            np.testing.assert_allclose(float(row[name]), float(value), rtol=1e-2, atol=1e-6, err_msg=name)
    assert {row["diverged"] for row in rows} == {"0"}  # the metric the format added, read back as zeros
