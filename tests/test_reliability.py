"""Reliability of the training command: a folder belongs to one run, nothing is lost when a run is stopped or
killed at any point, a file read back runs no code, and every failure is one line.

Faults are injected at chosen points by a patched command, not by timers from outside: in a process of its own
(`conftest.run_patched`) where it is killed, else in this process (`conftest.run_main`, patched with
`monkeypatch`), as are the commands that resume. Each test of a stopped run ends comparing the finished run's
metrics with an uninterrupted one's, bit for bit.
"""

import json
import os

import jax
import numpy as np
import pytest
from conftest import SHORT_RUN as ARGS
from conftest import read_metrics, run_main, run_patched, same_metrics
from test_loggers import read_events

from purejaxppo.cli.run import main
from purejaxppo.cli.run_dir import LOCK_FILE, RunDirLock
from purejaxppo.io.checkpoint import Checkpointer
from purejaxppo.io.evaluation import summary_line
from purejaxppo.scale.sweep import Sweep


def one_line_error(capsys, argv) -> str:
    """The error line of `python -m purejaxppo.run argv` run in this process, which must exit 2."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


# --- a folder belongs to one run --------------------------------------------------------------------------


def test_a_folder_in_use_is_refused_at_once(tmp_path, capsys):
    out = tmp_path / "out"
    held = RunDirLock(out)  # another run holds it
    try:
        err = one_line_error(capsys, [*ARGS, "--out", str(out)])
    finally:
        held.release()
    assert f"{out} is in use by another run (process {os.getpid()})" in err
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # nothing written


def test_an_unwritable_out_fails_before_compiling(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    err = one_line_error(capsys, [*ARGS, "--out", str(blocker / "run")])
    assert f"cannot write to {blocker / 'run'}" in err
    assert "compiled" not in capsys.readouterr().out
    if os.geteuid() != 0:  # root writes anywhere: only another user can see a read-only folder refused
        readonly = tmp_path / "readonly"
        readonly.mkdir(mode=0o500)
        assert "cannot write to" in one_line_error(capsys, [*ARGS, "--out", str(readonly / "run")])


@pytest.mark.parametrize("argv, message", [
    (["--seed", "4294967296"], "seed=4294967296 is invalid: seeds are integers in [0, 2^31)"),
    (["--seed", "-1"], "seed=-1 is invalid"),
    (["--seed", "2147483647", "--num-seeds", "2"], "with 2 seeds, at most 2147483646"),
    (["--sweep", "lr=1e-3", "--sweep", "lr=1e-4"], "--sweep sets lr twice"),
    (["--sweep", "ent-coef=0", "--sweep", "ent_coef=0.1"], "--sweep sets ent_coef twice"),
    (["--lr", "1e-3", "--sweep", "lr=1e-4,1e-3"], "--lr 0.001 and --sweep lr=... both set lr: give one of them"),
    (["--env", ""], "--env '' is invalid: name an env"),
])
def test_inputs_that_did_the_wrong_thing_silently_are_one_line_errors(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert message in one_line_error(capsys, [*argv, "--out", str(out)])
    assert not out.exists()


def test_a_malformed_flag_is_one_line_too(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--seed", "1e20"])
    err = capsys.readouterr().err
    assert exit.value.code == 2 and err.count("\n") == 1
    assert err.startswith("error: argument --seed: invalid int value: '1e20'")


def test_batches_that_cannot_fit_in_memory_are_refused_before_compiling(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("purejaxppo.scale.memory.available_bytes", lambda device: 2**30)  # a 1 GiB device
    err = one_line_error(capsys, ["--num-envs", "65536", "--num-steps", "128", "--total-timesteps", "8388608",
                                  "--out", str(tmp_path / "out")])
    assert "training 1 run(s) of 65536 envs x 128 steps needs about 8.9 GiB, more than the 1.0 GiB available" in err
    assert "lower --num-envs, --num-steps or --num-seeds" in err and not (tmp_path / "out").exists()


# --- stopped, killed, restarted -----------------------------------------------------------------------------


@pytest.mark.slow
def test_killed_before_its_first_checkpoint_resume_starts_it_again(short_run, tmp_path):
    killed = run_patched("import os, signal\nfrom purejaxppo.scale.sweep import Sweep\n"
                         "Sweep.compile = lambda self, *a, **k: os.kill(os.getpid(), signal.SIGKILL)",
                         *ARGS, "--out", str(tmp_path / "run"))
    assert killed.returncode == -9
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [LOCK_FILE, "config.json"]
    resumed = run_main("--resume", str(tmp_path / "run"), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert "restarted" in resumed.stdout and "from its beginning" in resumed.stdout
    same_metrics(tmp_path / "run", short_run)


@pytest.mark.slow
def test_killed_after_its_final_checkpoint_resume_writes_the_missing_outputs(short_run, tmp_path):
    killed = run_patched("import os, signal\nimport purejaxppo.cli.run as run\n"
                         "run.write_outputs = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)",
                         *ARGS, "--out", str(tmp_path / "run"))
    assert killed.returncode == -9
    assert Checkpointer(tmp_path / "run").latest() == 32 and not (tmp_path / "run" / "summary.json").exists()
    resumed = run_main("--resume", str(tmp_path / "run"))
    assert resumed.returncode == 0, resumed.stderr
    assert "compiled in" not in resumed.stdout and "nothing left to train" in resumed.stdout
    same_metrics(tmp_path / "run", short_run)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["resumed_at_update"] == 32 and summary["steps_per_second"] is None


KILL_AFTER_LOGGING_PAST_THE_CHECKPOINT = """
import os, signal
from purejaxppo.io.loggers import TensorBoardLogger
log = TensorBoardLogger.log
def log_then_die(self, result, start, stop):
    log(self, result, start, stop)
    if stop == 12:  # logged up to update 12, past the checkpoint at 8: those updates are logged again
        for writer in self.writers.values():
            writer.flush()
        os.kill(os.getpid(), signal.SIGKILL)
TensorBoardLogger.log = log_then_die
"""


@pytest.mark.slow
def test_tensorboard_logs_each_step_once_across_a_resume(tmp_path):
    command = [*ARGS, "--tensorboard", "--log-every", "1", "--out", str(tmp_path / "run")]
    killed = run_patched(KILL_AFTER_LOGGING_PAST_THE_CHECKPOINT, *command)
    assert killed.returncode == -9
    resumed = run_main("--resume", str(tmp_path / "run"), "--tensorboard", "--log-every", "1", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    (run_dir,) = (tmp_path / "run" / "tensorboard").iterdir()
    events = read_events(run_dir)
    for tag in ("metrics/value_loss", "metrics/learning_rate", "metrics/entropy", "metrics/diverged"):
        steps = [e.step for e in events for v in e.summary.value if v.tag == tag]
        assert steps == [512 * u for u in range(1, 33)], tag  # every update's, once each, in order


# --- what a folder holds is read back safely ---------------------------------------------------------------


TREE = {"params": np.zeros((2, 3), np.float32)}
META = {"config": {"env": "CartPole-v1"}, "seeds": [0], "sweep": {}, "num_updates": 976}


@pytest.mark.parametrize("edit, message", [
    (dict(color="red"), "has unknown metadata keys 'color'"),
    (dict(seeds=[]), "has seeds [], not a list of consecutive integers"),
    (dict(seeds="0"), "has seeds '0', not a list of consecutive integers"),
    (dict(seeds=[3, 1]), "has seeds [3, 1], not a list of consecutive integers"),
    (dict(config="CartPole"), "has a config of type str"),
    (dict(config={"env": "CartPole-v1", "lr": "fast"}), "has lr='fast', not a number"),
    (dict(config={"env": "CartPole-v1", "colour": 1}), "has unknown config fields 'colour'"),
    (dict(sweep={"lr": "1e-3"}), "has a sweep grid"),
    (dict(num_updates=5), "has num_updates 5, but its config makes 976"),
])
def test_checkpoint_metadata_is_checked_before_it_is_used(tmp_path, capsys, edit, message):
    Checkpointer(tmp_path).save(TREE, 3, {**META, **edit})
    assert message in one_line_error(capsys, ["--resume", str(tmp_path)])
    with pytest.raises(ValueError, match="not a run this version of purejaxppo wrote"):
        Checkpointer(tmp_path).meta()


def _checkpoint(tmp_path):
    Checkpointer(tmp_path).save(TREE, 3, META)
    return tmp_path / "checkpoints" / "3"


@pytest.mark.limit(20)  # reading the planted FIFO would block: refusing it must not read it
@pytest.mark.parametrize("plant", ["file link", "folder link", "fifo"])
def test_a_link_or_special_file_in_a_checkpoint_is_refused_and_nothing_outside_is_read(tmp_path, plant):
    step = _checkpoint(tmp_path / "run")
    outside = tmp_path / "outside"
    if plant == "fifo":
        os.mkfifo(step / "state" / "extra")
    else:
        os.mkfifo(outside)  # reading what the link points to would block forever
        target = outside if plant == "file link" else tmp_path
        os.symlink(target, step / "state" / "extra")
    what = "not a plain file" if plant == "fifo" else "a symbolic link"
    with pytest.raises(ValueError, match=f"checkpoint .* is refused: state/extra is {what}"):
        Checkpointer(tmp_path / "run").meta()


def test_a_linked_checkpoint_folder_is_refused(tmp_path):
    step = _checkpoint(tmp_path / "run")
    os.rename(step, tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", step)
    with pytest.raises(ValueError, match="is refused: .* is a symbolic link"):
        Checkpointer(tmp_path / "run").meta()


# --- divergence ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_diverged_run_stops_names_the_update_and_records_it(tmp_path):
    out = tmp_path / "run"
    result = run_main(*ARGS[:-3], "--lr", "1e30", "--out", str(out))  # Adam steps of 1e30: inf at once
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: run 0 diverged at update 1/32 (a non-finite loss or parameter): lower --lr")
    assert json.loads((out / "summary.json").read_text())["diverged_at_update"] == 1
    assert read_metrics(out / "metrics.csv")[0]["diverged"] == "1"
    assert Checkpointer(out).latest() is None  # the non-finite state was not saved


@pytest.mark.slow
def test_a_diverged_run_keeps_its_last_finite_checkpoint(tmp_path, monkeypatch):
    first_divergence, calls = Sweep.first_divergence, []

    def diverged_third(self, progress, start=0):
        calls.append(1)
        return (progress.done, 0) if len(calls) == 3 else first_divergence(self, progress, start)

    monkeypatch.setattr(Sweep, "first_divergence", diverged_third)
    out = tmp_path / "run"
    result = run_main(*ARGS[:-3], "--checkpoint-every", "1", "--out", str(out))
    assert result.returncode == 1
    update = json.loads((out / "summary.json").read_text())["diverged_at_update"]
    last = Checkpointer(out).latest()
    assert 0 < last < update and f"its last finite checkpoint, update {last}, is kept" in result.stderr


def test_evaluation_names_returns_that_are_not_finite():
    class Policy:
        env_id, run, seed, hyperparams, updates_done = "CartPole-v1", 0, 0, {}, 1
        config = type("C", (), {"num_updates": 1})()

    line = summary_line(Policy(), np.array([1.0, np.nan, 3.0]))
    assert "(1 returns not finite: the policy or the env produced NaN or inf)" in line and "did not end" not in line


def test_the_diverged_metric_is_set_inside_the_program():
    from purejaxppo.core.metrics import diverged

    finite = {"policy_loss": jax.numpy.float32(1.0), "value_loss": jax.numpy.float32(2.0),
              "entropy": jax.numpy.float32(0.5)}
    assert not diverged(finite, {"w": np.ones(3, np.float32)})
    assert diverged(finite, {"w": np.array([1.0, np.inf, 0.0], np.float32)})
    assert diverged({**finite, "value_loss": jax.numpy.float32(np.nan)}, {"w": np.ones(3, np.float32)})


@pytest.mark.slow
def test_evaluating_more_episodes_than_fit_in_memory_is_refused(short_run, capsys, monkeypatch):
    from purejaxppo.cli.evaluate import main as evaluate_main

    monkeypatch.setattr("purejaxppo.scale.memory.available_bytes", lambda device: 2**30)
    assert evaluate_main([str(short_run), "--episodes", "100000000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: evaluating 100,000,000 episodes at once needs about ") and err.count("\n") == 1
    assert "GiB, more than the 1.0 GiB available" in err and err.rstrip().endswith("lower --episodes")
