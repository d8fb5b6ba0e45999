"""benchmarks/gpu.py, the benchmark for a lent GPU, runs end to end at smoke sizes on the CPU and writes its
table: every workload a row, with figures that are numbers."""

import contextlib
import importlib.util
import io
import re
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"

pytestmark = [pytest.mark.slow, pytest.mark.end_to_end]


def run_script(*args: str) -> tuple[int, str]:
    """The script's `main(args)` called in this process (what it measures is in-process anyway): its exit status
    and what it printed on stdout, without a process start and its imports."""
    spec = importlib.util.spec_from_file_location("gpu_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = module.main(list(args))
    return code, out.getvalue()


def test_smoke_run_writes_a_row_per_workload(tmp_path):
    table = tmp_path / "gpu.md"
    code, stdout = run_script("--smoke", "--no-rejax", "--out", str(table))
    assert code == 0
    assert table.read_text() == stdout
    lines = stdout.splitlines()
    # where it ran, above the table: the machine, the accelerator, the software
    assert lines[0].startswith("- machine: ") and " cores usable of " in lines[0] and "; ISA: " in lines[0]
    assert lines[1].startswith("- accelerator: none; XLA_FLAGS: ")
    assert lines[2].startswith("- software: Python 3.") and ", jax 0." in lines[2] and ", jaxlib 0." in lines[2]
    assert "SMOKE sizes, not a measurement" in lines[4] and "rejax not installed or not asked for" in lines[4]
    rows = [line for line in lines if re.match(r"\| (CartPole-v1|Breakout-MinAtar) \|", line)]
    assert [r.split("|")[1:3] for r in rows] == [[" CartPole-v1 ", " 1 "], [" CartPole-v1 ", " 4 "],
                                               [" Breakout-MinAtar ", " 2 "]]
    for r in rows:
        steps_per_s, compile_s, final_return = (cell.split(" / ")[0].strip() for cell in r.split("|")[4:7])
        assert float(steps_per_s.replace(",", "")) > 0 and float(compile_s) > 0
        assert float(final_return) >= 0  # CartPole and Breakout pay no negative reward
