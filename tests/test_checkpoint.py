"""Checkpoints and resume through the CLI: a killed run resumes to the bits of an uninterrupted one."""

import hashlib
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from purejaxppo.run import main

ARGS = ["--env", "CartPole-v1", "--num-seeds", "4", "--total-timesteps", "204800", "--quiet"]
FINAL = 400  # updates of 4 envs x 128 steps: checkpoints at 50, 100, ..., 400


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "purejaxppo.run", *args], capture_output=True, text=True,
                          timeout=timeout)


def saved_arrays(run) -> list[np.ndarray]:
    """The arrays of a run's final checkpoint, read back with orbax (its files also hold timestamps)."""
    restored = ocp.StandardCheckpointer().restore((run / "checkpoints" / str(FINAL) / "state").absolute())
    return [np.asarray(x) for x in jax.tree.leaves(restored)]


def tree_digest(path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "whole"
    result = cli(*ARGS, "--checkpoint-every", "50", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_killed_run_resumes_to_identical_results(uninterrupted, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "purejaxppo.run", *ARGS, "--checkpoint-every", "50",
                             "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (out / "checkpoints" / "50" / "digests.json").is_file():  # the first checkpoint, complete
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (out / "metrics.csv").exists()  # killed midway, before its results
    assert FINAL not in [int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit()]

    resumed = cli("--resume", str(out), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout
    assert (out / "metrics.csv").read_bytes() == (uninterrupted / "metrics.csv").read_bytes()
    a, b = saved_arrays(uninterrupted), saved_arrays(out)
    assert len(a) == len(b) > 10
    for x, y in zip(a, b):  # every saved array (params, optimizer, envs, keys, metrics), bit for bit
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()


def test_chunked_run_equals_one_call(uninterrupted, tmp_path):
    """The CLI's chunks of --checkpoint-every updates compute what one call of the program computes."""
    out = tmp_path / "one-call"
    result = cli(*ARGS, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "metrics.csv").read_bytes() == (uninterrupted / "metrics.csv").read_bytes()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [str(FINAL)]  # only the final one


def _resume_error(capsys, *args) -> str:
    assert main(list(args)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    return err


def test_resume_errors_leave_everything_as_it_was(uninterrupted, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(uninterrupted, run)
    before = tree_digest(run)

    assert "num_envs=4, not 8" in _resume_error(capsys, "--resume", str(run), "--num-envs", "8")
    assert "env='CartPole-v1', not 'Acrobot-v1'" in _resume_error(capsys, "--resume", str(run), "--env",
                                                                   "Acrobot-v1")
    assert "--num-seeds 4, not 2" in _resume_error(capsys, "--resume", str(run), "--num-seeds", "2")
    assert f"is complete ({FINAL}/{FINAL} updates)" in _resume_error(capsys, "--resume", str(run))
    assert tree_digest(run) == before

    assert "no complete checkpoint" in _resume_error(capsys, "--resume", str(tmp_path / "missing"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no complete checkpoint" in _resume_error(capsys, "--resume", str(empty))


def test_partial_and_corrupt_checkpoints(uninterrupted, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(uninterrupted, run)
    # A save killed midway leaves only orbax's temporary folder: it is not a checkpoint, the latest complete
    # one is used.
    latest = run / "checkpoints" / str(FINAL)
    shutil.copytree(latest, run / "checkpoints" / f"{FINAL + 1}.orbax-checkpoint-tmp-1")
    from purejaxppo.checkpoint import Checkpointer
    assert Checkpointer(run).latest() == FINAL
    # Killed after orbax finished but before the digests were written: not complete either.
    shutil.copytree(latest, run / "checkpoints" / str(FINAL + 4), ignore=shutil.ignore_patterns("digests*"))
    assert Checkpointer(run).latest() == FINAL

    # Corrupt the arrays of the latest checkpoint: a clear error, and nothing else is touched.
    for f in (latest / "state").rglob("*"):
        if f.is_file() and f.stat().st_size > 64:
            f.write_bytes(b"\0" * 16)
    before = tree_digest(run)
    assert "corrupt" in _resume_error(capsys, "--resume", str(run))
    assert tree_digest(run) == before


def test_bad_checkpoint_interval(capsys, tmp_path):
    assert "--checkpoint-every -1" in _resume_error(capsys, "--checkpoint-every", "-1", "--out", str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()
