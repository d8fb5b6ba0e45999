"""The caches are checked before they are trusted: an entry runs only as the program it was made for, nothing
in the cache folders can block a run, a damaged entry of JAX's cache is moved aside once, an unusable folder
means training without the caches (one warning line, the run's folder unharmed), a resumed run hits the cache
its run filled, and every cache file is the user's alone.

A run on a PUREJAXPPO_CACHE of its own is a command in a fresh process: JAX opens its cache folder once per
process, and its keys name that folder. The rest runs in this process, whose compiles go through the session's
cache (`conftest.compile_cache`)."""

import os
import shutil
import signal
import stat
from pathlib import Path

import numpy as np
import pytest
from conftest import cli_env, read_metrics, run_cli, run_main, run_patched

from purejaxppo.core.config import PPOConfig
from purejaxppo.scale import program_cache
from purejaxppo.scale.sweep import Sweep

TANH = PPOConfig(env="CartPole-v1", num_envs=4, num_steps=16, num_minibatches=2, update_epochs=2,
                 total_timesteps=64 * 4)
RELU = TANH.replace(activation="relu")
ARGS = ["--env", "CartPole-v1", "--num-envs", "4", "--num-steps", "16", "--num-minibatches", "2",
        "--total-timesteps", "1024", "--quiet"]


@pytest.fixture(scope="module")
def cold(tmp_path_factory) -> Path:
    """ARGS trained by the command in a fresh process on an empty cache of its own, `cache/`: the run (`run/`)
    whose metrics every run on that cache must reproduce, and the cache as the command wrote it, kept in
    `as-written/` (`_cache_as_written` puts it back)."""
    base = tmp_path_factory.mktemp("cold")
    result = run_cli(*ARGS, "--out", str(base / "run"), env=cli_env(PUREJAXPPO_CACHE=str(base / "cache")))
    assert result.returncode == 0, result.stderr
    shutil.copytree(base / "cache", base / "as-written")  # its files' modes too
    return base


def _cache_as_written(cold: Path, ignore=None) -> Path:
    """`cold`'s cache as its run wrote it, in the folder that run used: JAX's keys name that folder (the compile
    options point XLA's own caches into it), so in any other folder its entries would never be looked up."""
    cache = cold / "cache"
    shutil.rmtree(cache)
    shutil.copytree(cold / "as-written", cache, ignore=ignore)
    return cache


def _entry(cache) -> set[str]:
    return {p.stem for p in cache.glob("*.program")}


def _files(cache: Path) -> list[Path]:
    return [p for p in (*cache.iterdir(), *(cache / "programs").iterdir()) if p.is_file()]


@pytest.mark.slow
def test_an_entry_copied_over_another_configurations_key_is_rebuilt(tmp_path):
    cache = tmp_path / "cache"
    tanh = Sweep(TANH, num_seeds=1)
    tanh.compile(cache)
    (tanh_key,) = _entry(cache)
    relu = Sweep(RELU, num_seeds=1)
    relu.compile(cache)
    (relu_key,) = _entry(cache) - {tanh_key}
    relu_alone = relu.run().metrics
    for suffix in (".program", ".json"):  # relu's entry now holds tanh's program
        shutil.copyfile(cache / (tanh_key + suffix), cache / (relu_key + suffix))
    again = Sweep(RELU, num_seeds=1)
    again.compile(cache)
    assert not again.program_cached  # rebuilt, and replaced with relu's own
    np.testing.assert_array_equal(again.run().metrics["value_loss"], relu_alone["value_loss"])
    assert not np.array_equal(relu_alone["value_loss"], tanh.run().metrics["value_loss"])
    assert program_cache.load(cache, relu_key) is not None


@pytest.mark.slow
def test_cache_files_are_the_users_alone_and_fifos_among_them_neither_block_nor_break_a_run(cold, tmp_path):
    cache = _cache_as_written(cold)
    entries = _files(cache)
    assert any(p.name.endswith("-cache") for p in entries) and any(p.suffix == ".program" for p in entries)
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in entries} == {oct(0o600)}
    assert {oct(stat.S_IMODE(d.stat().st_mode)) for d in (cache, cache / "programs")} == {oct(0o700)}
    for path in _files(cache):  # every file of both caches becomes a FIFO no one writes to
        path.unlink()
        os.mkfifo(path)
    warm = run_cli(*ARGS, "--out", str(tmp_path / "warm"), env=cli_env(PUREJAXPPO_CACHE=str(cache)))
    assert warm.returncode == 0, warm.stderr
    assert read_metrics(tmp_path / "warm" / "metrics.csv") == read_metrics(cold / "run" / "metrics.csv")
    assert not any(stat.S_ISFIFO(p.lstat().st_mode) for p in (*cache.iterdir(), *(cache / "programs").iterdir()))


@pytest.mark.slow
def test_a_damaged_xla_cache_entry_is_moved_aside_once_and_written_again(cold, tmp_path):
    cache = _cache_as_written(cold)
    env = cli_env(PUREJAXPPO_CACHE=str(cache))
    entries = sorted(cache.glob("*-cache"))
    assert entries
    for entry in entries:
        entry.write_bytes(b"damaged" * 100)
    shutil.rmtree(cache / "programs")  # the traced program too, so that each XLA entry is looked up
    damaged = run_cli(*ARGS, "--out", str(tmp_path / "damaged"), env=env)
    assert damaged.returncode == 0, damaged.stderr
    lines = damaged.stderr.strip().splitlines()
    assert lines and all(line.startswith("warning: the compile cache's entry ") for line in lines), lines
    assert {p.name for p in cache.glob("*.damaged")} <= {e.name + ".damaged" for e in entries}
    assert all(e.is_file() and e.read_bytes() != b"damaged" * 100 for e in entries if
               (cache / (e.name + ".damaged")).exists())  # written again
    again = run_cli(*ARGS, "--out", str(tmp_path / "again"), env=env)
    assert again.returncode == 0 and again.stderr == "", again.stderr
    for run in ("damaged", "again"):
        assert read_metrics(tmp_path / run / "metrics.csv") == read_metrics(cold / "run" / "metrics.csv")


@pytest.mark.slow
@pytest.mark.parametrize("cache", ["a-file", "/proc/purejaxppo-cache"])
def test_an_unusable_cache_folder_trains_without_it_after_one_warning(tmp_path, cache, monkeypatch):
    if cache == "a-file":
        cache = tmp_path / "a-file"
        cache.write_text("not a folder")
    monkeypatch.setenv("PUREJAXPPO_CACHE", str(cache))  # read by the command as it starts
    result = run_main(*ARGS, "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"warning: the compile cache {cache} cannot be used") and "PUREJAXPPO_CACHE" in line
    assert (tmp_path / "run" / "summary.json").is_file()


STOP_AT_THE_SECOND_CHUNK = """
import os, signal
from purejaxppo.scale.sweep import Sweep
advance, calls = Sweep.advance, []
def advance_then_stop(self, *args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGTERM)
    return advance(self, *args, **kwargs)
Sweep.advance = advance_then_stop
"""


@pytest.mark.slow
def test_a_resumed_run_hits_the_program_cache_its_run_filled(cold, tmp_path, monkeypatch):
    """The run starts on `cold`'s cache without its traced programs: JAX's entries spare it and its resume a
    compile, and the program it traces is the one entry there, which its resume finds."""
    cache, out = _cache_as_written(cold, ignore=shutil.ignore_patterns("programs")), tmp_path / "run"
    monkeypatch.setenv("PUREJAXPPO_CACHE", str(cache))
    stopped = run_patched(STOP_AT_THE_SECOND_CHUNK, *ARGS, "--checkpoint-every", "4", "--out", str(out))
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr
    programs = _entry(cache / "programs")
    assert len(programs) == 1
    resumed = run_cli("--resume", str(out), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert _entry(cache / "programs") == programs  # the same key: no second entry
