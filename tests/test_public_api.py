"""The package's face: what `dir(purejaxppo)` lists, and `evaluate`, the library's function, which running the
evaluation command (the module of the same name) leaves in place."""

import subprocess
import sys

import pytest
from conftest import command_limit

import purejaxppo

PUBLIC = {"PPOConfig", "make_train", "sweep", "Sweep", "SweepResult", "TrainOutput", "load_policy", "evaluate",
          "CSVLogger", "ProgressBar", "TensorBoardLogger", "WandbLogger"}


def test_dir_lists_the_public_api():
    assert PUBLIC <= set(dir(purejaxppo)) and set(purejaxppo.__all__) == PUBLIC


@pytest.mark.slow
def test_evaluate_is_the_function_and_running_the_command_leaves_it_so():
    code = """
import runpy, sys
import purejaxppo
from purejaxppo import evaluate
from purejaxppo.io.evaluation import evaluate as function
assert evaluate is function, evaluate
sys.argv = ["purejaxppo.evaluate", "--help"]
try:
    runpy.run_module("purejaxppo.evaluate", run_name="__main__", alter_sys=True)  # as python -m does
except SystemExit as e:
    assert e.code == 0, e.code
assert purejaxppo.evaluate is function and "purejaxppo.evaluate" not in sys.modules
from purejaxppo.cli.evaluate import main
assert main is not None
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=command_limit())
    assert result.returncode == 0, result.stderr
    assert "python -m purejaxppo.evaluate" in result.stdout  # the command's help
    assert result.stdout.splitlines()[-1] == "ok"
