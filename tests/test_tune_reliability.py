"""The tuner (`purejaxppo.tune`) is as reliable as a run (issue #33): a resume refuses flags that would change its
search, its folder's files are read only as small regular files and written whole, never through a link, a
confirmation seed that returned NaN is named and never averaged away, and a tuner started with SIGINT ignored
(in the background) stops on it as a run does.

Everything but the signal is checked without training: the command in this process stops before anything
compiles, and the outputs are written from fabricated results."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import cli_env, command_limit, run_main
from test_tune import SMALL, SMALL_ARGS

from purejaxppo.cli.tune import build_parser, spec_from_args
from purejaxppo.io.tune_report import write_outputs
from purejaxppo.io.tune_state import STATE, TunerFolder
from purejaxppo.scale import files
from purejaxppo.scale.halving import Scored, best_config, rank, rank_correlation
from purejaxppo.scale.tune import Tuner, TuneResult


def tune(*args: str):
    return run_main(*args, module="purejaxppo.cli.tune")


def one_line(result, code: int = 2) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    (line,) = result.stderr.strip().splitlines()
    return line


@pytest.fixture
def stopped_tuner(tmp_path):
    """The folder of SMALL_ARGS' tuner, stopped before its first rung: its tune_state.json as the command writes
    it, and nothing else."""
    folder = tmp_path / "tuner"
    folder.mkdir()
    spec = spec_from_args(build_parser().parse_args(SMALL_ARGS))
    TunerFolder(folder, spec).save({"groups": {}, "confirmed": {}, "compiles": 0, "seconds": 0.0})
    return folder


# --- a resume keeps its search ----------------------------------------------------------------------------------


REFUSED = [
    (["--trials", "12"], "--trials 3, not 12"),
    (["--num-seeds", "4"], "--num-seeds 2, not 4"),
    (["--search-fraction", "0.5"], "--search-fraction 1.0, not 0.5"),
    (["--param", "lr=log:1e-4:1e-2"], "--param lr=log:0.001:0.01, not --param lr=log:0.0001:0.01"),
    (["--param", "lr=log:1e-3:1e-2", "--param", "gamma=lin:0.9:0.99"], "not --param lr=log:0.001:0.01 --param g"),
    (["--lr", "0.1"], "not 0.1"),
    (["--total-timesteps", "1152"], "--total-timesteps 576, not 1152"),
    (["--no-anneal-lr"], "--anneal-lr, not --no-anneal-lr"),
    (["--hidden-sizes", "32", "32"], "--hidden-sizes 64 64, not 32 32"),
    (["--env", "Acrobot-v1"], "--env CartPole-v1, not Acrobot-v1"),
]
"""Flags given beside --resume that change the search SMALL_ARGS started, and what the refusal says."""


@pytest.mark.parametrize("flags, message", [pytest.param(*case, id=" ".join(case[0])) for case in REFUSED])
def test_a_resume_refuses_a_flag_that_changes_its_search(stopped_tuner, flags, message):
    before = (stopped_tuner / STATE).read_bytes()
    line = one_line(tune("--resume", str(stopped_tuner), *flags, "--quiet"))
    assert line.startswith("error: --resume: the tuner is one with ") and message in line, line
    assert line.endswith("; a resumed tuner keeps its search (drop the flag)")
    assert (stopped_tuner / STATE).read_bytes() == before
    assert sorted(p.name for p in stopped_tuner.iterdir()) == [STATE]  # refused before the folder was claimed


def test_a_resume_refuses_a_config_file_or_out_folder_of_another_search(stopped_tuner, tmp_path):
    config = tmp_path / "best.json"
    config.write_text(json.dumps({"env": "CartPole-v1", "gamma": 0.9}))
    line = one_line(tune("--resume", str(stopped_tuner), "--config", str(config)))
    assert f"not --config {config}'s gamma=0.9" in line, line
    elsewhere = tmp_path / "elsewhere"
    line = one_line(tune("--resume", str(stopped_tuner), "--out", str(elsewhere)))
    assert line == f"error: --resume: the tuner writes to {stopped_tuner}, not --out {elsewhere} (drop --out)"


def test_a_resume_takes_the_flags_it_was_started_with(stopped_tuner):
    """The very command line that started it, given again with --resume, changes nothing: accepted."""
    from purejaxppo.cli.tune_flags import check_resumed_flags

    spec = files.read_json(stopped_tuner / STATE)["spec"]
    check_resumed_flags(build_parser().parse_args([*SMALL_ARGS, "--resume", str(stopped_tuner)]), spec)
    check_resumed_flags(build_parser().parse_args(["--resume", str(stopped_tuner), "--quiet"]), spec)


# --- the folder's files: small regular files, replaced whole ----------------------------------------------------


@pytest.mark.limit(40)  # a read that blocks fails here, as hung, rather than stalling the suite
@pytest.mark.parametrize("make, what", [(os.mkfifo, "is a FIFO, not a regular file"),
                                        (lambda path: os.symlink("/dev/zero", path), "is a symbolic link")],
                         ids=["fifo", "link to /dev/zero"])
def test_a_resume_refuses_a_state_file_that_would_hang_or_fill_memory(tmp_path, make, what):
    make(tmp_path / STATE)
    line = one_line(tune("--resume", str(tmp_path)))
    assert line.startswith(f"error: --resume: {tmp_path / STATE} {what}") and "resume a folder a tuner wrote" in line


def test_a_state_file_far_larger_than_a_tuner_writes_is_refused(tmp_path, monkeypatch):
    from purejaxppo.io import tune_state

    monkeypatch.setattr(tune_state, "STATE_LIMIT", 1000)  # what 64 MiB would show, without writing them
    (tmp_path / STATE).write_text(" " * 1001)
    assert "is larger than 1,000 bytes" in one_line(tune("--resume", str(tmp_path)))


def test_the_state_is_written_whole_and_never_through_a_link(stopped_tuner, tmp_path):
    """A link planted where the state is written (or where it was written beside it, before it replaced it)
    leaves the file it points to as it was."""
    theirs = tmp_path / "theirs"
    theirs.write_text("theirs")
    (stopped_tuner / STATE).unlink()
    for name in (STATE, f".{STATE}.tmp"):
        os.symlink(theirs, stopped_tuner / name)
    TunerFolder(stopped_tuner, {"config": {}}).save({"groups": {}})
    assert theirs.read_text() == "theirs"
    assert not (stopped_tuner / STATE).is_symlink()
    assert files.read_json(stopped_tuner / STATE) == {"spec": {"config": {}}, "groups": {}}


@pytest.fixture(scope="module")
def tuner():
    """SMALL's tuner, made and not run: its env, trials and rungs, what the outputs are written from."""
    return Tuner(SMALL)


def fabricated(tuner, confirmed: dict[int, list[float]]) -> TuneResult:
    """`tuner`'s result as if its search had scored trial i at i and its confirmation returned `confirmed`."""
    scored = rank([Scored(t, [float(t.index)]) for t in tuner.trials])
    for s in scored:
        if s.trial.index in confirmed:
            s.confirmed = np.asarray(confirmed[s.trial.index], np.float64)
    config, winner = best_config(tuner.plan.config, scored)
    return TuneResult(scored, config, winner, compiles=3, train_seconds=1.0, rank_correlation=rank_correlation(scored))


def test_the_outputs_replace_links_and_leave_what_they_point_to(tuner, tmp_path):
    out, elsewhere = tmp_path / "tuner", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    names = ("trials.csv", "ranked.md", "best.json", "scores.png", "tune.json")
    for name in names:
        (elsewhere / name).write_text("theirs")
        os.symlink(elsewhere / name, out / name)
    write_outputs(out, tuner, fabricated(tuner, {2: [100.0, 120.0]}), {"params": []})
    for name in names:
        assert (elsewhere / name).read_text() == "theirs", name
        assert not (out / name).is_symlink() and (out / name).stat().st_size > 0, name
    assert files.read_json(out / "best.json")["env"] == "CartPole-v1"


# --- a confirmation seed that returned NaN ----------------------------------------------------------------------


def confirmed_means(report: str) -> dict[str, str]:
    """The ranked table's confirmed mean of each trial, as printed."""
    header, _, *rows = [[c.strip() for c in line.strip("|").split("|")] for line in report.splitlines()
                        if line.startswith("|")]
    trial, mean = header.index("trial"), header.index("confirmed mean")
    return {row[trial]: row[mean] for row in rows}


def test_a_nan_confirmation_seed_is_named_and_never_averaged_away(tuner, tmp_path):
    """Trial 2 would win on the mean of its other seed (500); with a seed that returned NaN its mean is NaN, and
    trial 1, whose seeds all returned, wins."""
    report = write_outputs(tmp_path, tuner, fabricated(tuner, {2: [500.0, np.nan], 1: [100.0, 120.0]}), {})
    summary = files.read_json(tmp_path / "tune.json")  # refuses a NaN token, as every JSON reader does
    assert summary["best_trial"] == 1 and summary["best_confirmed_return"] == 110.0
    assert summary["confirm_nan_seeds"] == {"2": [1003]}  # seeds 1002-1003: the second
    assert summary["rank_correlation"]["spearman"] is None  # one finite confirmed mean: undefined
    assert "trial 2: confirmation seed 1003 returned NaN" in report and "not the mean of the other seeds" in report
    assert confirmed_means(report) == {"1": "110.0", "2": "nan", "0": ""}
    assert files.read_json(tmp_path / "best.json")["lr"] == dict(tuner.trials[1].params)["lr"]


def test_a_winner_whose_every_seed_diverged_has_no_mean(tuner, tmp_path):
    report = write_outputs(tmp_path, tuner, fabricated(tuner, {2: [np.nan, np.nan]}), {})
    summary = files.read_json(tmp_path / "tune.json")
    assert summary["best_trial"] == 2 and summary["best_confirmed_return"] is None
    assert summary["best_ci95"] == [None, None] and summary["confirm_nan_seeds"] == {"2": [1002, 1003]}
    assert "trial 2: confirmation seeds 1002, 1003 returned NaN" in report


def test_the_state_holds_null_for_nan_and_reads_it_back(tmp_path, monkeypatch):
    """The state a tuner saves is JSON (null, not NaN), and a tuner made from it again reads null as NaN and
    confirms nothing twice."""
    import purejaxppo.scale.tune as tune_module

    trained = []

    def confirm_with_a_nan_seed(config, todo, *args):
        trained.extend(todo)
        for s in todo:
            s.confirmed = np.array([1.0, np.nan])
        return 1

    monkeypatch.setattr(tune_module, "confirm", confirm_with_a_nan_seed)
    searched = {"groups": {"0": {"rung": 2, "alive": [2], "scores": {"0": [0.0], "1": [0.5], "2": [1.0, 2.0]}}},
                "confirmed": {}, "compiles": 2, "seconds": 0.0}
    saved = []
    Tuner(SMALL, searched, on_save=lambda state: saved.append(files.dumps(state))).confirm()
    assert [s.trial.index for s in trained] == [2]
    state = files.loads(saved[-1])
    assert state["confirmed"] == {"2": [1.0, None]}
    state["groups"]["0"]["scores"]["0"] = [None]  # as a rung where no episode ended records it
    folder = TunerFolder(tmp_path, {})
    folder.save(state)
    ranked = Tuner(SMALL, folder.read_state()).confirm()  # nothing left to confirm: trains nothing
    assert len(trained) == 1
    assert ranked[0].trial.index == 2 and np.isnan(ranked[0].confirmed[1]) and np.isnan(ranked[-1].search_score)


# --- signals ----------------------------------------------------------------------------------------------------


WAIT_FOR_THE_SIGNAL = """
import os, sys, time
from purejaxppo.scale.sweep import Sweep
advance, calls = Sweep.advance, []
def advance_once_signalled(self, *args, **kwargs):
    calls.append(1)
    if len(calls) == 2:  # its first progress is printed: the test sends the signal, then makes this file
        while not os.path.exists(os.environ["SIGNALLED"]):
            time.sleep(0.05)
    return advance(self, *args, **kwargs)
Sweep.advance = advance_once_signalled
from purejaxppo.cli.tune import main
sys.exit(main(sys.argv[1:]))
"""
"""The tuning command, held before its second chunk of updates until the test has signalled it: the signal
arrives while it trains, however fast the machine, not after it finished."""


@pytest.mark.slow
@pytest.mark.portable  # a real training process, stopped by a signal
@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_tuner_started_in_the_background_stops_on_a_signal(tmp_path, name):
    """Started as a shell starts a background job, with SIGINT ignored, which Python keeps: the tuner stops on
    SIGINT (and SIGTERM) as a run does, saving where it stands, with the interruption's line."""
    out, signalled = tmp_path / "tune", tmp_path / "signalled"
    command = [sys.executable, "-c", WAIT_FOR_THE_SIGNAL, *SMALL_ARGS, "--out", str(out)]
    # ignored here while the process starts, which inherits it: a preexec_fn would fork this multithreaded
    # (JAX) process without exec, which can deadlock the child
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=cli_env(SIGNALLED=str(signalled)))
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        for line in process.stdout:
            if ": update " in line:  # its first progress
                break
        else:
            pytest.fail(f"the tuner ended before its first progress: {process.stderr.read()}")
        process.send_signal(getattr(signal, name))
        signalled.touch()
        _, stderr = process.communicate(timeout=command_limit())
    finally:
        process.kill()
    assert process.returncode == 128 + getattr(signal, name), stderr
    (line,) = stderr.strip().splitlines()
    assert line == (f"interrupted: every rung the tuner finished is saved in {out}; continue with: "
                    f"python -m purejaxppo.tune --resume {out}")
    assert files.read_json(out / STATE)["spec"]["trials"] == 3
