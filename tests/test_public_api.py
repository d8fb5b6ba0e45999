"""The package's face: what `dir(purejaxppo)` lists, and `evaluate`, which is both the library's function and
the evaluation command's module."""

import subprocess
import sys

import purejaxppo

PUBLIC = {"PPOConfig", "make_train", "sweep", "Sweep", "SweepResult", "TrainOutput", "load_policy", "evaluate"}


def test_dir_lists_the_public_api():
    assert PUBLIC <= set(dir(purejaxppo)) and set(purejaxppo.__all__) == PUBLIC


def test_evaluate_is_the_function_before_and_after_the_command_module_is_imported():
    code = """
import inspect
import purejaxppo
from purejaxppo import evaluate
from purejaxppo.io.evaluation import evaluate as function
assert evaluate is function, evaluate
import purejaxppo.evaluate  # the command's module, which the import binds to purejaxppo.evaluate
assert purejaxppo.evaluate.main is not None and purejaxppo.evaluate.evaluate is function
assert callable(purejaxppo.evaluate)
calls = []
import purejaxppo.io.evaluation as evaluation
evaluation.evaluate = lambda *args, **kwargs: calls.append((args, kwargs)) or "returns"
assert purejaxppo.evaluate("policy", episodes=3) == "returns" and calls == [(("policy",), {"episodes": 3})]
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
