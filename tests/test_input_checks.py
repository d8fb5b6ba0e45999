"""Input that once did something silently wrong, or failed deep inside JAX, and is now refused in one line before
anything is claimed or compiled (issue #33's third round): config fields checked by type wherever they come
from, env kwargs that count steps, flags that contradict each other, and an env that is not a JAX env."""

import errno
import json
import os
import shutil

import numpy as np
import pytest
from conftest import SHORT_RUN, one_line, run_main

from purejaxppo import PPOConfig, make_train, sweep
from purejaxppo.io import evaluation
from purejaxppo.io.checkpoint import Checkpointer, CheckpointSaveError

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("fields, message", [
    ({"lr": None}, "sets lr=null: not a number"),
    ({"gamma": "0.99"}, 'sets gamma="0.99": not a number'),
    ({"ent_coef": True}, "sets ent_coef=true: not a number"),
    ({"hidden_sizes": None}, "hidden_sizes=None is invalid"),
])
def test_a_config_file_with_a_null_or_text_number_is_refused_before_the_folder_is_claimed(tmp_path, fields, message):
    config = tmp_path / "best.json"  # as the tuner writes it, edited
    config.write_text(json.dumps(fields))
    line = one_line(run_main(*SHORT_RUN, "--config", str(config), "--out", str(tmp_path / "run")))
    assert message in line
    assert not (tmp_path / "run").exists()


def test_resume_of_a_config_json_with_a_null_is_one_line(short_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    config = json.loads((short_run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "lr": None}))  # killed before its first checkpoint
    assert "lr=None is invalid: must be a number > 0" in one_line(run_main("--resume", str(run)))


@pytest.mark.parametrize("field, value", [("lr", "abc"), ("lr", None), ("gamma", True), ("clip_eps", b"0.2")])
def test_config_fields_are_checked_by_type_in_python(field, value):
    with pytest.raises(ValueError, match=rf"^PPOConfig\.{field}=.* is invalid: must be a number"):
        PPOConfig(**{field: value})
    PPOConfig(vf_clip_eps=None)  # None there means "as clip_eps"


@pytest.mark.parametrize("env, kwarg", [("CartPole-v1", "max_steps_in_episode=-5"),
                                        ("CartPole-v1", "max_steps_in_episode=0"),
                                        ("Breakout-MinAtar", "max_steps_in_episode=2.5")])
def test_env_kwargs_that_count_steps_must_be_positive_integers(tmp_path, env, kwarg):
    line = one_line(run_main(*SHORT_RUN, "--env", env, "--env-kwargs", kwarg, "--out", str(tmp_path / "run")))
    assert f"{kwarg.split('=')[0]}={kwarg.split('=')[1]}" in line and "must be a positive integer" in line
    assert not (tmp_path / "run").exists()


def test_resume_with_another_out_names_the_conflict(short_run, tmp_path):
    line = one_line(run_main("--resume", str(short_run), "--out", str(tmp_path / "elsewhere")))
    assert "--resume" in line and "--out" in line and "give one of them" in line
    assert not (tmp_path / "elsewhere").exists()


def test_evaluating_a_run_with_another_env_is_refused(short_run, capsys):
    from purejaxppo.cli.evaluate import main

    assert main([str(short_run), "--env", "Acrobot-v1", "--episodes", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a run of CartPole-v1, not of Acrobot-v1" in err


def test_a_sweep_that_lists_a_value_twice_is_refused(tmp_path):
    line = one_line(run_main(*SHORT_RUN, "--sweep", "lr=1e-3,0.001", "--out", str(tmp_path / "run")))
    assert "lists lr=0.001 twice" in line
    with pytest.raises(ValueError, match="lists lr=0.001 twice"):
        sweep(PPOConfig(), lr=[1e-3, 1e-3])


def test_a_seed_count_past_the_seeds_there_are_says_so(tmp_path):
    line = one_line(run_main(*SHORT_RUN, "--num-seeds", "3000000000", "--out", str(tmp_path / "run")))
    assert "num_seeds=3000000000 is invalid: must be an integer from 1 to 1,048,576" in line


def test_a_gymnasium_env_is_named_as_one():
    gymnasium = pytest.importorskip("gymnasium")
    with pytest.raises(ValueError, match="is a gymnasium env, and gymnasium envs are not JAX envs"):
        make_train(PPOConfig(env="gym-cartpole"), env=gymnasium.make("CartPole-v1"))


def test_a_render_into_a_folder_that_cannot_be_written_fails_before_drawing(tmp_path, monkeypatch):
    opened = os.open

    def read_only(path, flags, *args):  # root writes anywhere: a read-only file system, as the probe met it
        if flags & os.O_CREAT:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return opened(path, flags, *args)

    monkeypatch.setattr(evaluation.os, "open", read_only)
    with pytest.raises(ValueError, match=r"cannot write .*episode\.gif: Read-only file system"):
        evaluation.check_renderable("Catch-bsuite", tmp_path / "episode.gif")


def test_a_full_disk_says_the_room_it_asks_for(tmp_path, monkeypatch):
    (tmp_path / "checkpoints").mkdir()
    checkpointer = Checkpointer(tmp_path)
    state = {"params": np.zeros(100_000, np.float32)}  # 0.38 MiB
    free = 2**19  # 0.5 MiB: more than the arrays, less than the room a save asks for
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(2**30, 2**30 - free, free))
    with pytest.raises(CheckpointSaveError) as raised:
        checkpointer.save(state, 1, {})
    message = str(raised.value)
    needs = float(message.split("asks for ")[1].split(" MiB free")[0])
    has = float(message.split("; ")[-1].split(" MiB are free")[0])
    assert needs > has == 0.5, message
    assert needs == pytest.approx((2 * 400_000 + 2**18) / 2**20, abs=0.01)
    assert "twice its 0.38 MiB of arrays" in message


@pytest.mark.parametrize("value, message", [(float("inf"), "must be a finite number"),
                                            (float("nan"), "must be a finite number"),
                                            (np.array("abc"), "must be a number"),
                                            (1e-3 + 0j, "must be a number"),
                                            (np.array([True]), "must be a number")])
def test_numbers_that_are_not_finite_or_not_real_are_named_as_such(value, message):
    with pytest.raises(ValueError, match=rf"^PPOConfig\.lr=.* is invalid: {message}"):
        PPOConfig(lr=value)


def test_sweep_values_equal_in_float32_are_one_value(tmp_path):
    line = one_line(run_main(*SHORT_RUN, "--sweep", "lr=0.001,0.0010000000000000002", "--out", str(tmp_path / "r")))
    assert "lists lr=0.001 twice" in line


def test_resume_with_its_own_folder_as_out_is_no_conflict(short_run, tmp_path):
    line = one_line(run_main("--resume", str(short_run), "--out", str(short_run)))
    assert "is complete" in line  # the run's own answer, not a conflict of flags


@pytest.mark.parametrize("flags, message", [(["--trials", "2147483648"], "--trials 2147483648 is invalid"),
                                            (["--confirm-seeds", "2147483648"], "--confirm-seeds 2147483648"),
                                            (["--seed", "2147483647"], "seed=2147483647 is invalid")])
def test_a_tuner_too_large_for_memory_or_the_seeds_is_refused_before_its_folder_is_made(tmp_path, flags, message):
    line = one_line(run_main(*flags, "--out", str(tmp_path / "tune"), module="purejaxppo.cli.tune"))
    assert message in line
    assert not (tmp_path / "tune").exists()
