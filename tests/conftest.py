"""Helpers every test module may use: the commands, in-process or in a subprocess, their environment and hang
limits, and the runs that many tests only read, trained once per session.

Hang limits are multiples of a calibration run timed on this machine as it is loaded now (`calibration`), never
fixed seconds: jax 0.10.x deadlocked in vmapped multi-seed runs on CPU, and a hang must fail a test rather than
stall CI, but a machine three times slower, or one whose cores are busy, must not fail a test that is not hung.
"""

import contextlib
import csv
import fcntl
import functools
import io
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

CALIBRATION = """
import jax, jax.numpy as jnp
jax.jit(lambda x: jnp.linalg.qr(x @ x.T + jnp.eye(64))[0].sum())(jnp.ones((64, 64))).block_until_ready()
"""
"""The calibration run: start Python, import JAX, compile and run a small program; what every command the tests
start does first, and about the smallest thing it does."""

COMMAND_LIMIT = 150
"""Calibration runs a command may take before its test fails as hung (about 4 minutes where a calibration takes
1.5 s; the commands the tests start take seconds)."""

TEST_LIMIT = 300
"""Calibration runs a test may take before pytest-timeout fails it as hung (`pytest.mark.limit(N)` sets another)."""


@functools.cache
def calibration() -> float:
    """Seconds the calibration run takes in a fresh process, timed once per test process: the unit of the hang
    limits, so that they stretch with a slower or a busier machine."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", CALIBRATION], check=True, capture_output=True,
                   env=cli_env(JAX_PLATFORMS="cpu"))
    return time.perf_counter() - start


def limit(runs: float) -> float:
    """`runs` calibration runs, in seconds: a hang limit that means the same on a fast machine and a slow one."""
    return runs * calibration()


def command_limit() -> float:
    """Seconds a command may take before its test fails as hung."""
    return limit(COMMAND_LIMIT)

SOLVED_CARTPOLE = ["--env", "CartPole-v1", "--num-seeds", "2", "--checkpoint-every", "65", "--quiet"]
"""The CLI's CartPole defaults (2e5 steps, 195 updates), two seeds, a checkpoint every third of the run: what the
learning checks (`make test-learning`) read."""

TWO_SEEDS = ["--env", "CartPole-v1", "--num-seeds", "2", "--num-envs", "8", "--num-steps", "16", "--num-minibatches",
             "2", "--total-timesteps", str(8 * 16 * 24), "--checkpoint-every", "8", "--quiet"]
"""24 updates of two seeds, 8 envs x 16 steps, a checkpoint every third of the run: the session's run of several
seeds, for the tests that read one (policies by run index, checkpoints of several runs, a killed run resumed)."""

SHORT_RUN = ["--env", "CartPole-v1", "--num-envs", "4", "--total-timesteps", "16384", "--checkpoint-every", "8",
             "--quiet"]
"""32 updates of 4 envs x 128 steps, a checkpoint every 8: what the reliability and fault tests stop, kill and
restart (the envs given, so the count does not follow CartPole's tuned defaults)."""


def xla_flags(*extra: str) -> str:
    """This process's XLA_FLAGS (the Makefile's quick compiles, a user's ISA limit) less any CPU device count, and
    `extra`: for a command that sets its own device count."""
    inherited = [flag for flag in os.environ.get("XLA_FLAGS", "").split()
                 if not flag.startswith("--xla_force_host_platform_device_count")]
    return " ".join([*inherited, *extra])


def cli_env(**extra: str) -> dict[str, str]:
    """The environment commands run in: this process's, unbuffered (so a killed command's output is whole)."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", **extra}


def run_cli(*args: str, module: str | None = "purejaxppo.run", cwd=None, env=None,
            timeout: float | None = None) -> subprocess.CompletedProcess:
    """`python -m <module> args...` in a fresh process (`python args...` with no module); its output captured as
    text. For what only a process shows: startup, signals, exit codes, the environment it reads, several devices;
    the rest calls the command in-process (`run_main`)."""
    command = [sys.executable, *(["-m", module] if module else []), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout or command_limit(),
                          env=env or cli_env(), cwd=cwd)


def _to_stderr(message, category, filename, lineno, file=None, line=None) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def run_main(*args: str, module: str = "purejaxppo.cli.run") -> subprocess.CompletedProcess:
    """`module`'s `main(args)` called in this process, as `run_cli` would run the command: its exit status and
    what it printed. No process start, and the programs this process compiled before are compiled already."""
    import importlib

    main = importlib.import_module(module).main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        # warnings on the command's stderr, as a fresh process prints them, where the one-line assertions see them
        # (pytest's own capture would take them away); a fresh process ignores the same categories
        warnings.resetwarnings()
        warnings.simplefilter("default")
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", category)
        warnings.showwarning = _to_stderr
        try:
            code = main(list(args))
        except SystemExit as e:  # argparse's usage errors
            code = e.code if isinstance(e.code, int) else 2
    return subprocess.CompletedProcess([module, *args], code, out.getvalue(), err.getvalue())


def run_patched(prelude: str, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """The training command in a fresh process, after `prelude` (Python that patches it, e.g. to kill itself at a
    chosen moment: a fault injected at a known point rather than by a timer from outside)."""
    script = f"{prelude}\nimport sys\nfrom purejaxppo.cli.run import main\nsys.exit(main(sys.argv[1:]))\n"
    return run_cli("-c", script, *args, module=None, timeout=timeout)


def one_line(result: subprocess.CompletedProcess, code: int = 2) -> str:
    """The one line a command that failed with `code` printed on stderr, which starts `error: `."""
    assert result.returncode == code, (result.stdout, result.stderr)
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: "), line
    return line


def read_metrics(path) -> list[dict[str, str]]:
    """metrics.csv's rows, as strings by column."""
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session", autouse=True)
def compile_cache(tmp_path_factory, worker_id):
    """Every test's programs and the commands it runs share one fresh compilation cache, every worker's the same:
    hermetic, yet warm after the first compile of a program on any worker (the caches take concurrent writers:
    entries are written whole, then renamed). The test processes compile through it too, from their first
    compile on, as the commands they call in-process (`run_main`) do; JAX decides once per process whether it
    uses a cache, so it is decided here, before any test, whatever compiled while the tests were collected."""
    from purejaxppo.cli.caches import usable_cache_dir, use_compilation_cache

    os.environ["PUREJAXPPO_CACHE"] = str(_shared_folder(tmp_path_factory, worker_id) / "jax-cache")
    use_compilation_cache(usable_cache_dir())
    with contextlib.suppress(ImportError, AttributeError):  # private: where JAX lacks it, tests are slower, not wrong
        from jax._src import compilation_cache

        compilation_cache.reset_cache()


def _shared_folder(tmp_path_factory, worker_id) -> Path:
    """The test session's own temporary folder, the same for every pytest-xdist worker."""
    shared = tmp_path_factory.getbasetemp()
    return shared.parent if worker_id != "master" else shared  # each worker's base folder sits in the session's


def trained_once(shared: Path, name: str, args: list[str]) -> Path:
    """The run folder of the training command `args`, trained once per test session however many workers ask
    for it: the first worker to ask trains it (in-process, under a lock); the others wait and reuse it."""
    out = shared / name
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "summary.json").is_file():
            result = run_main(*args, "--out", str(out))
            assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="session")
def solved_cartpole(tmp_path_factory, worker_id) -> Path:
    """The run directory of `SOLVED_CARTPOLE`, shared by the session. Tests must not change it: copy it first."""
    return trained_once(_shared_folder(tmp_path_factory, worker_id), "solved-cartpole", SOLVED_CARTPOLE)


@pytest.fixture(scope="session")
def two_seeds(tmp_path_factory, worker_id) -> Path:
    """The run directory of `TWO_SEEDS`, shared by the session. Tests must not change it: copy it first."""
    return trained_once(_shared_folder(tmp_path_factory, worker_id), "two-seeds", TWO_SEEDS)


@pytest.fixture(scope="session")
def short_run(tmp_path_factory, worker_id) -> Path:
    """`SHORT_RUN` trained without interruption, shared by the session: what a stopped and restarted run must end
    equal to, and a small run to read. Tests must not change it: copy it first."""
    return trained_once(_shared_folder(tmp_path_factory, worker_id), "short-run", SHORT_RUN)


def same_metrics(run: Path, reference: Path) -> None:
    """The two runs' metrics.csv, byte for byte."""
    assert (run / "metrics.csv").read_bytes() == (reference / "metrics.csv").read_bytes()



LONGEST_FIRST = ("test_suites.py", "test_caches.py", "test_tune.py", "test_suites_toolkit.py", "test_evaluate.py",
                 "test_faults.py", "test_program_cache.py", "test_parallel.py", "test_sweep.py", "test_envs.py",
                 "test_recurrent.py", "test_train.py", "test_cli.py", "test_one_line_errors.py", "test_brax.py")
"""The files that take longest under `make test` (its --durations), longest first: each runs on one worker
(`--dist loadfile`), and handing them out first keeps one from starting last and running alone."""


def pytest_configure(config):
    config.addinivalue_line("markers", "limit(runs): the test fails as hung after `runs` calibration runs "
                                       "(conftest.calibration) instead of TEST_LIMIT")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(Path(str(item.fspath)).name, len(rank)))  # stable: the rest as collected
    for item in items:  # pytest-timeout's limit, in this machine's calibration runs rather than fixed seconds
        marker = item.get_closest_marker("limit")
        item.add_marker(pytest.mark.timeout(limit(marker.args[0] if marker else TEST_LIMIT)))
