"""Checkpoints and resume through the CLI: a killed run resumes to the bits of an uninterrupted one (two seeds,
`conftest.TWO_SEEDS`, each run a command of its own), and a run cut into chunks computes what one call does (the
shared short run, `conftest.short_run`). The rest is called in this process (`conftest.run_main`)."""

import hashlib
import json
import shutil

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from conftest import SHORT_RUN, TWO_SEEDS, run_cli, run_main, same_metrics

from purejaxppo.cli.run import main
from purejaxppo.cli.run_dir import LOCK_FILE
from purejaxppo.io.checkpoint import FORMAT, Checkpointer

FINAL = 24  # updates of the shared run of two seeds (`conftest.two_seeds`): checkpoints every 8

KILLED_AFTER_FIRST_CHECKPOINT = """
import os, signal, sys
from purejaxppo.io.checkpoint import FORMAT, Checkpointer
save = Checkpointer.save
def save_then_die(self, *args, **kwargs):
    save(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
Checkpointer.save = save_then_die
from purejaxppo.cli.run import main
from purejaxppo.cli.run_dir import LOCK_FILE
sys.exit(main(sys.argv[1:]))
"""
"""The training command, killed (SIGKILL) the moment its first checkpoint is complete."""


def saved_arrays(run) -> list[np.ndarray]:
    """The arrays of a run's final checkpoint, read back with orbax (its files also hold timestamps)."""
    restored = ocp.StandardCheckpointer().restore((run / "checkpoints" / str(FINAL) / "state").absolute())
    return [np.asarray(x) for x in jax.tree.leaves(restored)]


def tree_digest(path) -> dict[str, str]:
    """Every file's digest but the lock's, which each attempt on the folder takes (writing its process id)."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file() and p.name != LOCK_FILE}


@pytest.mark.slow
@pytest.mark.portable  # an injected fault, with test_faults.py
def test_killed_run_resumes_to_identical_results(tmp_path):
    """Killed, resumed and uninterrupted, each a command in a process of its own, as a user runs them: a process
    and the test's own can compile the same program to other bits (seen under an older ISA)."""
    out, whole = tmp_path / "killed", tmp_path / "whole"
    killed = run_cli("-c", KILLED_AFTER_FIRST_CHECKPOINT, *TWO_SEEDS, "--out", str(out), module=None)
    assert killed.returncode == -9, killed.stderr
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["8"]
    assert not (out / "metrics.csv").exists()  # killed midway, before its results

    resumed = run_cli("--resume", str(out), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout and f"at update 8/{FINAL}" in resumed.stdout
    assert run_cli(*TWO_SEEDS, "--out", str(whole)).returncode == 0
    assert (out / "metrics.csv").read_bytes() == (whole / "metrics.csv").read_bytes()
    a, b = saved_arrays(whole), saved_arrays(out)
    assert len(a) == len(b) > 10
    for x, y in zip(a, b):  # every saved array (params, optimizer, envs, keys, metrics), bit for bit
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()


@pytest.mark.slow
def test_chunked_run_equals_one_call(short_run, tmp_path):
    """The CLI's chunks of --checkpoint-every updates compute what one call of the program computes: the shared
    short run, cut at every 8th update, against the same command without checkpoints."""
    out = tmp_path / "one-call"
    at = SHORT_RUN.index("--checkpoint-every")
    result = run_main(*SHORT_RUN[:at], *SHORT_RUN[at + 2:], "--out", str(out))
    assert result.returncode == 0, result.stderr
    same_metrics(out, short_run)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["32"]  # only the final one


def _resume_error(capsys, *args) -> str:
    assert main(list(args)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    return err


@pytest.mark.slow
def test_resume_errors_leave_everything_as_it_was(two_seeds, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(two_seeds, run)
    before = tree_digest(run)

    assert "num_envs=8, not 4" in _resume_error(capsys, "--resume", str(run), "--num-envs", "4")
    assert "env='CartPole-v1', not 'Acrobot-v1'" in _resume_error(capsys, "--resume", str(run), "--env",
                                                                   "Acrobot-v1")
    assert "--num-seeds 2, not 3" in _resume_error(capsys, "--resume", str(run), "--num-seeds", "3")
    assert f"is complete ({FINAL}/{FINAL} updates)" in _resume_error(capsys, "--resume", str(run))
    assert tree_digest(run) == before

    assert "missing does not exist: there is no run to resume" in _resume_error(
        capsys, "--resume", str(tmp_path / "missing"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no purejaxppo run: it has no config.json and no checkpoint" in _resume_error(
        capsys, "--resume", str(empty))


@pytest.mark.slow
def test_partial_and_corrupt_checkpoints(two_seeds, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(two_seeds, run)
    # A save killed midway leaves only orbax's temporary folder: it is not a checkpoint, the latest complete
    # one is used.
    latest = run / "checkpoints" / str(FINAL)
    shutil.copytree(latest, run / "checkpoints" / f"{FINAL + 1}.orbax-checkpoint-tmp-1")
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


@pytest.mark.slow
def test_bad_checkpoint_interval(capsys, tmp_path):
    assert "--checkpoint-every -1" in _resume_error(capsys, "--checkpoint-every", "-1", "--out", str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


# --- the checkpointer alone, on a small pytree ----------------------------------------------------------------


META = {"config": {"env": "CartPole-v1"}, "seeds": [0], "sweep": {}}
TREE = {"params": np.arange(6, dtype=np.float32).reshape(2, 3), "count": np.int32(7)}


def test_save_and_restore_a_pytree_with_its_update_count(tmp_path):
    checkpointer = Checkpointer(tmp_path)
    assert checkpointer.latest() is None
    checkpointer.save(TREE, 5, META)
    checkpointer.save(jax.tree.map(lambda x: x + 1, TREE), 9, META)
    assert checkpointer.latest() == 9
    template = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), TREE)
    restored, done = Checkpointer(tmp_path).restore(template)
    assert done == 9 and Checkpointer(tmp_path).meta()["format"] == FORMAT
    np.testing.assert_array_equal(restored["params"], TREE["params"] + 1)
    assert restored["count"] == 8 and isinstance(restored["params"], np.ndarray)


def test_a_checkpoint_of_a_newer_format_is_refused_in_one_line(tmp_path):
    Checkpointer(tmp_path).save(TREE, 1, META)
    step = tmp_path / "checkpoints" / "1"
    meta_file = next((step / "meta").glob("metadata"))
    meta_file.write_text(meta_file.read_text().replace(f'"format": {FORMAT}', f'"format": {FORMAT + 1}'))
    digests = step / "digests.json"  # the edit is made to look like the writer's own
    saved = json.loads(digests.read_text())
    saved["meta/metadata"] = hashlib.sha256(meta_file.read_bytes()).hexdigest()
    digests.write_text(json.dumps(saved))
    with pytest.raises(ValueError, match=rf"^checkpoint .* was written by a newer purejaxppo \(checkpoint format "
                                         rf"{FORMAT + 1}, this version reads up to {FORMAT}\): upgrade purejaxppo "
                                         r"to read it$"):
        Checkpointer(tmp_path).meta()


def test_an_edited_file_and_foreign_metadata_are_refused(tmp_path):
    Checkpointer(tmp_path / "a").save(TREE, 1, META)
    meta_file = tmp_path / "a" / "checkpoints" / "1" / "meta" / "metadata"
    meta_file.write_text(meta_file.read_text().replace("CartPole", "Acrobot"))
    with pytest.raises(ValueError, match="is corrupt: meta/metadata does not match its saved digest"):
        Checkpointer(tmp_path / "a").meta()
    Checkpointer(tmp_path / "b").save(TREE, 1, {"something": "else"})
    with pytest.raises(ValueError, match="is not a purejaxppo run's: its metadata lacks config, seeds, sweep"):
        Checkpointer(tmp_path / "b").meta()

