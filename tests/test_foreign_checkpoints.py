"""Checkpoints from elsewhere, or left half-written, are found out before anything is trained or changed: another
configuration's checkpoints in a run's folder, another configuration's state under a run's own metadata, a
`checkpoints` that is a file, a checkpoint copied in under another step's name, an unfinished save; and a reader
racing a run that rotates its checkpoints reads a consistent one.

The two runs of different configurations are the session's shared ones (`runs`), and the commands are called in
this process (`conftest.run_main`): what is tested is what they read, not how they start."""

import json
import shutil
from pathlib import Path

import pytest
from conftest import run_main

from purejaxppo.io import checkpoint as checkpoint_module
from purejaxppo.io.checkpoint import Checkpointer
from purejaxppo.io.policy import load_policy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(short_run, two_seeds) -> dict[str, Path]:
    """Two finished runs of different configurations, the session's: "a" (`conftest.short_run`: 4 envs, one
    seed, 32 updates, checkpoints 24 and 32 kept) and "b" (`conftest.two_seeds`: 8 envs, two seeds, 24 updates,
    checkpoints 16 and 24). Tests copy them before changing them."""
    return {"a": short_run, "b": two_seeds}


def _copy(run: Path, tmp_path: Path) -> Path:
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
            and p.name != ".purejaxppo.lock"}


def _refused_before_training(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and all(f in line for f in fragments), line
    assert "compiled in" not in result.stdout


def test_another_configurations_checkpoints_are_refused_and_nothing_changes(runs, tmp_path):
    run = _copy(runs["a"], tmp_path)
    shutil.rmtree(run / "checkpoints")
    shutil.copytree(runs["b"] / "checkpoints", run / "checkpoints")
    before = _snapshot(run)
    result = run_main("--resume", str(run), "--quiet")
    _refused_before_training(result, "is of another run than", "num_envs 8, not 4")
    assert _snapshot(run) == before


def test_another_configurations_state_under_the_runs_metadata_is_refused_in_one_line(runs, tmp_path):
    run = _copy(runs["a"], tmp_path)
    shutil.rmtree(run / "checkpoints" / "32")
    (run / "summary.json").unlink()
    step = run / "checkpoints" / "24"
    shutil.rmtree(step / "state")
    shutil.copytree(runs["b"] / "checkpoints" / "24" / "state", step / "state")
    (step / "digests.json").write_text(json.dumps(checkpoint_module._file_digests(step)))  # recomputed
    result = run_main("--resume", str(run), "--quiet")
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: checkpoint {step}") and "does not fit this run" in line, line
    with pytest.raises(ValueError, match="does not fit this run"):
        load_policy(run)


def test_a_checkpoints_file_is_refused_at_start(runs, tmp_path):
    run = _copy(runs["a"], tmp_path)
    shutil.rmtree(run / "checkpoints")
    (run / "summary.json").unlink()
    (run / "checkpoints").write_text("not a folder")
    _refused_before_training(run_main("--resume", str(run), "--quiet"), f"{run / 'checkpoints'} is not a folder")


def test_a_checkpoint_copied_in_as_a_newer_step_is_refused_before_compiling_naming_that_step(runs, tmp_path):
    run = _copy(runs["a"], tmp_path)
    shutil.copytree(runs["b"] / "checkpoints" / "16", run / "checkpoints" / "40")
    result = run_main("--resume", str(run), "--quiet")
    _refused_before_training(result, f"checkpoint {run / 'checkpoints' / '40'} was saved after update 16, not 40")


def test_an_unfinished_save_is_removed_on_the_next_start(runs, tmp_path):
    run = _copy(runs["a"], tmp_path)
    shutil.rmtree(run / "checkpoints" / "32")
    (run / "summary.json").unlink()
    unfinished = run / "checkpoints" / "32.orbax-checkpoint-tmp-1733450000"
    shutil.copytree(run / "checkpoints" / "24", unfinished)  # as a double SIGTERM during a save leaves one
    result = run_main("--resume", str(run), "--quiet")
    assert result.returncode == 0, result.stderr
    assert not unfinished.exists() and Checkpointer(run).latest() == 32


def test_a_reader_racing_a_rotation_reads_the_newer_checkpoint(runs, tmp_path, monkeypatch):
    """The run "saves" checkpoint 32 and deletes 24 just as the reader verifies 24 (no timing: the reader's own
    verification step does it); the reader then loads 32, with no error."""
    run = _copy(runs["a"], tmp_path)
    newer = tmp_path / "32"
    shutil.move(run / "checkpoints" / "32", newer)
    verify, rotated = Checkpointer._verify, []

    def verify_while_the_run_rotates(self, step):
        if step == 24 and not rotated:
            rotated.append(step)
            shutil.copytree(newer, self.directory / "32")
            shutil.rmtree(self.directory / "24")
        return verify(self, step)

    monkeypatch.setattr(Checkpointer, "_verify", verify_while_the_run_rotates)
    policy = load_policy(run)
    assert rotated and policy.updates_done == 32
