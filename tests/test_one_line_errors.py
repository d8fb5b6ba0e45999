"""Each of these ended in a traceback; each now ends in one line that says what to change (before anything
compiles where it can), and a closed stdout no longer abandons a run. A fault is injected at a known point (a
patch that raises, or sends the signal itself), never by a timer.

The commands run in this process (`conftest.run_main`, patched with `monkeypatch`) unless what is tested needs a
process of its own: the platform JAX starts with, a Ctrl-C while importing, a closed stdout."""

import errno
import json
import os
import signal
import subprocess
import sys

import pytest
from conftest import cli_env, command_limit, run_cli, run_main

from purejaxppo.core.config import PPOConfig
from purejaxppo.core.envs import make_env
from purejaxppo.core.metrics import METRICS
from purejaxppo.io.tune_state import TunerFolder
from purejaxppo.scale.memory import training_bytes

pytestmark = pytest.mark.slow

TINY = ["--env", "CartPole-v1", "--num-envs", "4", "--num-steps", "16", "--num-minibatches", "2",
        "--total-timesteps", "1024", "--quiet"]
TUNE = ["--env", "CartPole-v1", "--num-envs", "4", "--num-steps", "16", "--num-minibatches", "2",
        "--total-timesteps", "2048", "--trials", "2", "--num-seeds", "1", "--rungs", "2", "--confirm", "1",
        "--confirm-seeds", "1", "--quiet"]


def _one_line(result, code: int, *fragments: str) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    (line,) = result.stderr.strip().splitlines()
    assert all(f in line for f in fragments), line
    return line


def _patched(prelude: str, *args: str, module: str = "purejaxppo.cli.run") -> subprocess.CompletedProcess:
    script = f"{prelude}\nimport sys\nfrom {module} import main\nsys.exit(main(sys.argv[1:]))\n"
    return run_cli("-c", script, *args, module=None)


@pytest.mark.parametrize("env, kwargs, name", [
    ("CartPole-v1", "max_steps_in_episode=abc", "max_steps_in_episode='abc' is not a number"),
    ("purejaxppo.examples.corridor:make", "length=abc", "length='abc' is not a number"),
])
def test_env_kwargs_of_the_wrong_type(tmp_path, env, kwargs, name):
    result = run_main(*TINY, "--env", env, "--env-kwargs", kwargs, "--out", str(tmp_path / "run"))
    _one_line(result, 2, "error: ", name, "give a number")
    assert not (tmp_path / "run").exists()


def test_an_out_name_or_path_too_long(tmp_path):
    _one_line(run_main(*TINY, "--out", str(tmp_path / ("x" * 300))), 2, "over the file system's limit")
    deep = tmp_path.joinpath(*["d" * 200] * 25)
    _one_line(run_main(*TINY, "--out", str(deep)), 2, "over this system's limit")


@pytest.mark.parametrize("platform, commands", [
    ("cuda", ("purejaxppo.run", "purejaxppo.tune", "purejaxppo.evaluate")), ("nosuchplatform", ("purejaxppo.run",))])
def test_a_platform_this_machine_lacks(tmp_path, platform, commands):
    for command in commands:
        args = {"purejaxppo.run": TINY, "purejaxppo.tune": TUNE, "purejaxppo.evaluate": []}[command]
        where = ["--out", str(tmp_path / command)] if args else [str(tmp_path / command)]
        result = run_cli(*args, *where, module=command, env=cli_env(JAX_PLATFORMS=platform))
        _one_line(result, 2, f"JAX cannot start platform {platform} here", "JAX_PLATFORMS")
        assert not (tmp_path / command).exists()


@pytest.mark.parametrize("flags, message", [
    (["--process-id", "5", "--num-processes", "2"], "give --coordinator HOST:PORT"),
    (["--coordinator", "nonsense", "--num-processes", "2", "--process-id", "0"], "--coordinator 'nonsense' is invalid"),
    (["--coordinator", "127.0.0.1:1234", "--num-processes", "2", "--process-id", "5"],
     "--process-id 5 is invalid: must be 0 to 1"),
])
def test_bad_multi_host_flags(tmp_path, flags, message):
    _one_line(run_main(*TINY, *flags, "--out", str(tmp_path / "run")), 2, message)


AS_AT_A_TERMINAL = "signal.signal(signal.SIGINT, signal.default_int_handler)"
"""Ctrl-C raises KeyboardInterrupt, as in a Python started at a terminal, even where this process was started with
SIGINT ignored (a background job of a shell without job control, say, which a test process inherits)."""


def test_ctrl_c_while_starting_writes_nothing(tmp_path):
    interrupt_while_planning = f"""
import os, signal
{AS_AT_A_TERMINAL}
import purejaxppo.cli.run as run
def interrupted(args):
    os.kill(os.getpid(), signal.SIGINT)
run.plan_run = interrupted
"""
    result = _patched(interrupt_while_planning, *TINY, "--out", str(tmp_path / "run"))
    _one_line(result, 130, "interrupted while starting")
    assert not (tmp_path / "run").exists()
    # Ctrl-C while the libraries are still being imported
    script = f"""
import importlib, os, runpy, signal, sys
{AS_AT_A_TERMINAL}
real_import = importlib.import_module
def importing(name, *args, **kwargs):
    if name == "purejaxppo.cli.run":
        os.kill(os.getpid(), signal.SIGINT)
    return real_import(name, *args, **kwargs)
importlib.import_module = importing
sys.argv = ["purejaxppo.run", *sys.argv[1:]]
runpy.run_module("purejaxppo.run", run_name="__main__")
"""
    _one_line(run_cli("-c", script, *TINY, module=None), 130, "interrupted while starting")


def test_the_tuners_ctrl_c_is_one_line_that_says_how_to_resume(tmp_path, monkeypatch):
    import purejaxppo.cli.tune as command

    open_tuner = command.open_tuner

    def open_to_interrupt_after_the_first_group(*args):
        folder, tuner = open_tuner(*args)
        search = tuner.search_group

        def search_then_interrupt(g):
            search(g)
            os.kill(os.getpid(), signal.SIGINT)  # Python's own handler: KeyboardInterrupt, as at a terminal

        tuner.search_group = search_then_interrupt
        return folder, tuner

    monkeypatch.setattr(command, "open_tuner", open_to_interrupt_after_the_first_group)
    out = tmp_path / "tune"
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # AS_AT_A_TERMINAL, in this process
    try:
        result = run_main(*TUNE, "--out", str(out), module="purejaxppo.cli.tune")
    finally:
        signal.signal(signal.SIGINT, previous)
    _one_line(result, 130, "interrupted: ", f"python -m purejaxppo.tune --resume {out}")
    assert json.loads((out / "tune_state.json").read_text())["groups"]


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_at_start_and_while_writing_the_results(tmp_path, monkeypatch):
    import purejaxppo.cli.plan as plan
    import purejaxppo.io.report as report

    with monkeypatch.context() as patch:
        patch.setattr(plan, "write_config_json", no_space)
        _one_line(run_main(*TINY, "--out", str(tmp_path / "start")), 2, "cannot write to", "No space left on device")
    out = tmp_path / "results"
    with monkeypatch.context() as patch:
        patch.setattr(report, "write_metrics_csv", no_space)
        line = _one_line(run_main(*TINY, "--out", str(out)), 1, "could not write the results", f"--resume {out}")
    assert "No space left on device" in line
    resumed = run_main("--resume", str(out), "--quiet")  # with room again: the outputs from the last checkpoint
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "summary.json").is_file() and (out / "metrics.csv").is_file()


def test_a_full_disk_for_the_tuner(tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(TunerFolder, "save", no_space)
        _one_line(run_main(*TUNE, "--out", str(tmp_path / "start"), module="purejaxppo.cli.tune"), 2,
                  "cannot write to", "No space left on device")
    save, calls = TunerFolder.save, []

    def save_until_full(self, state):
        calls.append(1)
        return save(self, state) if len(calls) == 1 else no_space()

    out = tmp_path / "later"
    with monkeypatch.context() as patch:
        patch.setattr(TunerFolder, "save", save_until_full)
        _one_line(run_main(*TUNE, "--out", str(out), module="purejaxppo.cli.tune"), 1, "could not write to",
                  f"--resume {out}")
    # the first rung's checkpoint was saved, its record in tune_state.json was not: the resume goes on from the
    # rung the record holds
    resumed = run_main("--resume", str(out), "--quiet", module="purejaxppo.cli.tune")
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "best.json").is_file()


def test_a_run_whose_updates_overflow_int32_or_whose_metrics_do_not_fit_is_refused(tmp_path):
    tiny = ["--total-timesteps", "700000000", "--num-envs", "1", "--num-steps", "1", "--num-minibatches", "1"]
    _one_line(run_main(*tiny, "--update-epochs", "4", "--out", str(tmp_path / "run")), 2, "gradient steps",
              "more than the 2,147,483,647 one run can count")
    # 7e8 updates of one step: the metrics alone take 2 x 4 bytes x 14 metrics x 7e8 = 73 GiB
    config = PPOConfig(env="CartPole-v1", num_envs=1, num_steps=1, num_minibatches=1, update_epochs=1,
                       total_timesteps=700_000_000)
    assert training_bytes(config, make_env("CartPole-v1"), 1, 0) > 2 * 4 * len(METRICS) * config.num_updates
    _one_line(run_main(*tiny, "--update-epochs", "1", "--out", str(tmp_path / "run")), 2, "GiB", "available")
    assert not (tmp_path / "run").exists()


def test_a_closed_stdout_lets_the_run_finish_and_write_its_results(tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "purejaxppo.run", *TINY[:-1], "--out", str(out)]  # not quiet: lines to drop
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env())
    process.stdout.readline()  # `... | head -1`
    process.stdout.close()
    assert process.wait(timeout=command_limit()) == 0
    assert process.stderr.read() == b""
    assert (out / "summary.json").is_file()


def test_the_tuner_refuses_a_param_given_twice(tmp_path):
    result = run_main(*TUNE, "--param", "lr=1e-4,1e-3", "--param", "lr=1e-2,1e-1", "--out", str(tmp_path / "t"),
                      module="purejaxppo.cli.tune")
    _one_line(result, 2, "--param lr is given more than once")
    assert not (tmp_path / "t").exists()
