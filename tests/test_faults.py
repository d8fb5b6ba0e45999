"""Fault injection: the training command killed at random points of its checkpointing, out of disk space in the
middle of a checkpoint, racing another run for its folder, stopped by a signal and started again. Whatever
happened, the run that follows finishes with the metrics of a run never interrupted, bit for bit.

Each fault is injected from inside the command (`conftest.run_patched`) at a point drawn from a fixed random
stream, so a failure can be replayed; the only timer is the one that lands a kill somewhere in a checkpoint. The
faulted command runs in a process of its own (a kill, a signal, an `os._exit` end it); what finishes the run after
it is called in this process (`conftest.run_main`), on the program the session compiled already.
"""

import random
import shutil
import signal
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from conftest import SHORT_RUN as ARGS
from conftest import cli_env, command_limit, run_cli, run_main, run_patched, same_metrics

from purejaxppo.io.checkpoint import Checkpointer

pytestmark = [pytest.mark.slow, pytest.mark.portable]

KILL_IN_A_CHECKPOINT = """
import os, signal, threading
from purejaxppo.io.checkpoint import Checkpointer
save, saves = Checkpointer.save, []
def save_and_die(self, *args, **kwargs):
    saves.append(1)
    if len(saves) == {save}:  # SIGKILL {delay:.4f} s into this save: before, inside or after its files
        threading.Timer({delay:.4f}, lambda: os.kill(os.getpid(), signal.SIGKILL)).start()
    return save(self, *args, **kwargs)
Checkpointer.save = save_and_die
"""


def finish(out) -> None:
    """Whatever a killed run left in `out`, `--resume` finishes it (or it had finished)."""
    if (out / "summary.json").is_file():
        return
    resumed = run_main("--resume", str(out), "--quiet")
    assert resumed.returncode == 0, resumed.stderr


def test_kill_9_at_random_points_of_checkpointing_resumes_bit_identical(short_run, tmp_path):
    draws = random.Random(20261201)
    outcomes = set()
    for trial in range(7):  # these draws kill inside the first, second and third of the run's checkpoints
        out = tmp_path / f"trial{trial}"
        save, delay = draws.randint(1, 4), draws.uniform(0.0, 0.3)  # 4 checkpoints: updates 8, 16, 24, 32
        killed = run_patched(KILL_IN_A_CHECKPOINT.format(save=save, delay=delay), *ARGS, "--out", str(out))
        assert killed.returncode in (-9, 0), killed.stderr
        outcomes.add((killed.returncode, Checkpointer(out).latest()))
        finish(out)
        same_metrics(out, short_run)
    assert len(outcomes) >= 3  # the kills landed at several different points


FULL_DISK_WRITER = """
import errno, os
import orbax.checkpoint as ocp
save, saves = ocp.CheckpointManager.save, []
def save_until_full(self, step, *args, **kwargs):
    saves.append(step)
    if len(saves) == 2:  # the disk fills up inside the second checkpoint: a part of it is written
        (self.directory / f"{step}.orbax-checkpoint-tmp-0").mkdir(parents=True)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return save(self, step, *args, **kwargs)
ocp.CheckpointManager.save = save_until_full
"""


def _small_tmpfs(path, size: int):
    """A tmpfs of `size` bytes mounted at `path`, or None where this machine allows no mount."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True)
    return path if mounted.returncode == 0 else None


def _fails_at_the_second_checkpoint_and_keeps_the_first(result, out) -> None:
    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: could not save the checkpoint of update 16") and "--resume" in line
    assert "the last complete checkpoint, update 8, is kept" in line
    assert Checkpointer(out).latest() == 8 and Checkpointer(out).meta()["done"] == 8  # intact: digests match


def test_a_disk_that_fills_up_inside_a_checkpoint_is_one_line_and_keeps_the_last_one(short_run, tmp_path):
    """The disk fills up in the middle of writing the second checkpoint (a writer that raises ENOSPC once some
    of it is written); then, where this machine lets a test mount a small tmpfs, a real disk without room for
    the second checkpoint. Either way: one line, the first checkpoint intact, and a resume elsewhere ends equal
    to an uninterrupted run."""
    out = tmp_path / "run"
    _fails_at_the_second_checkpoint_and_keeps_the_first(run_patched(FULL_DISK_WRITER, *ARGS, "--out", str(out)), out)
    shutil.copytree(out, tmp_path / "moved")
    finish(tmp_path / "moved")
    same_metrics(tmp_path / "moved", short_run)

    # Room for the first checkpoint and the space the checkpointer asks to find free before it writes one (twice
    # the state, and 256 KiB), with 100 KB to spare: not for the second, whose files take more than that.
    state = ocp.StandardCheckpointer().restore((short_run / "checkpoints" / "32" / "state").absolute())
    needed = sum(np.asarray(x).nbytes for x in jax.tree.leaves(state))
    disk = _small_tmpfs(tmp_path / "disk", 2 * needed + 2**18 + 100_000)
    if disk is None:
        pytest.skip("no tmpfs can be mounted here: the full disk was simulated only")
    try:
        _fails_at_the_second_checkpoint_and_keeps_the_first(run_cli(*ARGS, "--out", str(disk / "run")), disk / "run")
        shutil.copytree(disk / "run", tmp_path / "from-disk")
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    finish(tmp_path / "from-disk")
    same_metrics(tmp_path / "from-disk", short_run)


def test_two_runs_racing_for_one_folder_one_wins_and_the_other_says_so(short_run, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "purejaxppo.run", *ARGS, "--out", str(out)]
    racers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
              for _ in range(2)]
    results = [(r.wait(timeout=command_limit()), r.stderr.read()) for r in racers]
    assert sorted(code for code, _ in results) == [0, 2], results
    (loser,) = [err for code, err in results if code == 2]
    assert loser.count("\n") == 1 and (" is in use by another run" in loser or "is not empty" in loser), loser
    same_metrics(out, short_run)


SIGNAL_AT_A_CHUNK = """
import os, signal
from purejaxppo.scale.sweep import Sweep
advance, calls = Sweep.advance, []
def advance_then_signal(self, *args, **kwargs):
    calls.append(1)
    if len(calls) == {chunk}:
        os.kill(os.getpid(), signal.{name})  # arrives while this chunk is being trained
    return advance(self, *args, **kwargs)
Sweep.advance = advance_then_signal
"""


@pytest.mark.parametrize("name, chunk", [("SIGTERM", 3), ("SIGINT", 2), ("SIGHUP", 2)])
def test_a_signal_saves_the_last_chunk_and_the_same_command_finishes_bit_identical(short_run, tmp_path,
                                                                                   name, chunk):
    command = [*ARGS, "--out", str(tmp_path / "run"), "--auto-resume"]
    stopped = run_patched(SIGNAL_AT_A_CHUNK.format(name=name, chunk=chunk), *command)
    assert stopped.returncode == 128 + getattr(signal, name), stopped.stderr
    (line,) = stopped.stderr.strip().splitlines()
    assert line.startswith(f"stopped by {name}: checkpoint saved at update ") and "--resume" in line
    saved = int(line.split("update ")[1].split("/")[0])
    assert 0 < saved < 32 and Checkpointer(tmp_path / "run").latest() == saved
    again = run_main(*command)  # the very same command line
    assert again.returncode == 0, again.stderr
    assert f"resumed from {tmp_path / 'run'} at update {saved}/32" in again.stdout
    same_metrics(tmp_path / "run", short_run)
