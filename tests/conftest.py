"""Helpers every test module may use: the commands run in subprocesses, their environment and timeouts, and the
one solved CartPole run that the learning, evaluation and checkpoint tests share.

Commands run in a subprocess with a timeout: jax 0.10.x deadlocked in vmapped multi-seed runs on CPU, and a
hang must fail a test rather than stall CI.
"""

import csv
import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

TIMEOUT = 420
"""Seconds a command may take before its test fails."""

SOLVED_CARTPOLE = ["--env", "CartPole-v1", "--num-seeds", "2", "--checkpoint-every", "65", "--quiet"]
"""The CLI's CartPole defaults (2e5 steps, 195 updates), two seeds, a checkpoint every third of the run."""

SHORT_RUN = ["--env", "CartPole-v1", "--num-envs", "4", "--total-timesteps", "16384", "--checkpoint-every", "8",
             "--quiet"]
"""32 updates of 4 envs x 128 steps, a checkpoint every 8: what the reliability and fault tests stop, kill and
restart (the envs given, so the count does not follow CartPole's tuned defaults)."""


def cli_env(**extra: str) -> dict[str, str]:
    """The environment commands run in: this process's, unbuffered (so a killed command's output is whole)."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", **extra}


def run_cli(*args: str, module: str | None = "purejaxppo.run", cwd=None, env=None,
            timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """`python -m <module> args...` in a fresh process (`python args...` with no module); its output captured as
    text."""
    command = [sys.executable, *(["-m", module] if module else []), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env or cli_env(), cwd=cwd)


def run_patched(prelude: str, *args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """The training command in a fresh process, after `prelude` (Python that patches it, e.g. to kill itself at a
    chosen moment: a fault injected at a known point rather than by a timer from outside)."""
    script = f"{prelude}\nimport sys\nfrom purejaxppo.cli.run import main\nsys.exit(main(sys.argv[1:]))\n"
    return run_cli("-c", script, *args, module=None, timeout=timeout)


def read_metrics(path) -> list[dict[str, str]]:
    """metrics.csv's rows, as strings by column."""
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session", autouse=True)
def compile_cache(tmp_path_factory, worker_id):
    """CLI runs in the tests share one fresh compilation cache, every worker's the same: hermetic, yet warm after
    the first compile of a program on any worker (the caches take concurrent writers: entries are written whole,
    then renamed)."""
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        shared = shared.parent
    os.environ["PUREJAXPPO_CACHE"] = str(shared / "jax-cache")


@pytest.fixture(scope="session")
def solved_cartpole(tmp_path_factory, worker_id) -> Path:
    """The run directory of `SOLVED_CARTPOLE`, trained once per test session however many workers ask for it
    (the first trains it under a lock, the others wait and reuse it). Tests must not change it: copy it first."""
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":  # pytest-xdist: every worker's base folder sits in the session's own
        shared = shared.parent
    out = shared / "solved-cartpole"
    with open(shared / "solved-cartpole.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "summary.json").is_file():
            result = run_cli(*SOLVED_CARTPOLE, "--out", str(out))
            assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> Path:
    """`SHORT_RUN` trained without interruption: what a stopped and restarted run must end equal to."""
    out = tmp_path_factory.mktemp("runs") / "whole"
    result = run_cli(*SHORT_RUN, "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def same_metrics(run: Path, reference: Path) -> None:
    """The two runs' metrics.csv, byte for byte."""
    assert (run / "metrics.csv").read_bytes() == (reference / "metrics.csv").read_bytes()



LONGEST_FIRST = ("test_tune.py", "test_parallel.py", "test_faults.py", "test_evaluate.py", "test_caches.py",
                 "test_program_cache.py", "test_one_line_errors.py", "test_suites_toolkit.py", "test_suites.py",
                 "test_train.py", "test_reference_runs.py", "test_recurrent.py", "test_custom_env.py")
"""The files that take longest under `make test` (its --durations), longest first: each runs on one worker
(`--dist loadfile`), and handing them out first keeps one from starting last and running alone."""


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(Path(str(item.fspath)).name, len(rank)))  # stable: the rest as collected
