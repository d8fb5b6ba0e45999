"""The cache of traced programs: a warm start loads the program instead of tracing it, and trains the same bits.

The sweeps here compile through the session's compile cache (`conftest.compile_cache`): XLA compiles
each program once however many tests trace or load it, and what is timed is the trace, which the cache skips."""

import pickle
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from conftest import SHORT_RUN, run_patched, same_metrics

import purejaxppo.core.train
import purejaxppo.scale.program_cache
from purejaxppo.core.config import PPOConfig
from purejaxppo.scale import program_cache
from purejaxppo.scale.program_cache import PACKAGE_DIR, program_key
from purejaxppo.scale.sweep import Sweep

CONFIG = PPOConfig(env="CartPole-v1", num_envs=4, num_steps=16, num_minibatches=2, update_epochs=2,
                   total_timesteps=64 * 4)


def _metrics(job: Sweep) -> dict[str, np.ndarray]:
    return job.run().metrics


@pytest.fixture(scope="module")
def traced():
    """The sweep traced as usual, without the cache: what every cached run must reproduce."""
    return _metrics(Sweep(CONFIG, num_seeds=2, lr=[1e-3, 3e-3]))


@pytest.mark.slow
def test_a_cached_program_is_loaded_untraced_and_trains_the_same_bits(tmp_path, traced, monkeypatch):
    first = Sweep(CONFIG, num_seeds=2, lr=[1e-3, 3e-3])
    first.compile(tmp_path)
    assert not first.program_cached and len(list(tmp_path.glob("*.program"))) == 1
    second = Sweep(CONFIG, num_seeds=2, lr=[1e-3, 3e-3])

    def no_tracing(*args, **kwargs):
        raise AssertionError("traced the training step")

    monkeypatch.setattr(purejaxppo.core.train, "rollout", no_tracing)  # every update step starts with it
    second.compile(tmp_path)
    assert second.program_cached
    for metrics in (_metrics(first), _metrics(second)):
        for name, values in traced.items():
            np.testing.assert_array_equal(metrics[name], values, err_msg=name)

    # A damaged entry is traced again and replaced.
    monkeypatch.undo()
    (entry,) = tmp_path.glob("*.program")
    entry.write_bytes(entry.read_bytes()[:1000])
    third = Sweep(CONFIG, num_seeds=2, lr=[1e-3, 3e-3])
    third.compile(tmp_path)
    assert not third.program_cached
    np.testing.assert_array_equal(_metrics(third)["episode_return"], traced["episode_return"])
    assert program_cache.load(tmp_path, entry.stem) is not None


@pytest.mark.slow
def test_a_poisoned_cache_entry_runs_no_code_and_is_replaced(tmp_path):
    """A file planted in the cache that would run code if it were unpickled is never unpickled: the program is
    traced again, the run trains the same bits, and the folder and files are the user's alone."""
    cache = tmp_path / "cache"
    first = Sweep(CONFIG, num_seeds=1)
    first.compile(cache)
    (program,) = cache.glob("*.program")
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    for path in (program, program.with_suffix(".json")):
        path.write_bytes(pickle.dumps(Payload()))
    again = Sweep(CONFIG, num_seeds=1)
    again.compile(cache)
    assert not marker.exists() and not again.program_cached
    np.testing.assert_array_equal(_metrics(again)["value_loss"], _metrics(first)["value_loss"])
    assert program_cache.load(cache, program.stem) is not None  # replaced by a sound entry
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in cache.iterdir())


def test_the_key_names_the_program_and_its_environment(monkeypatch):
    program = {"config": CONFIG.to_dict(), "runs": 2}
    key = program_key(program)
    assert program_key(dict(program)) == key
    assert program_key({**program, "runs": 4}) != key
    assert program_key({**program, "config": CONFIG.replace(lr=1e-3).to_dict()}) != key
    monkeypatch.setattr(purejaxppo.scale.program_cache, "_version", lambda name: "0.0.0")
    assert program_key(program) != key  # another version of a library that traces into it


@pytest.mark.slow
def test_an_edit_to_a_source_file_in_a_sub_package_misses_the_cache(tmp_path, monkeypatch):
    """The key covers every source file of the package, sub-packages included: after an edit to the core's GAE,
    the program is traced again rather than loaded."""
    sources = tmp_path / "purejaxppo"
    shutil.copytree(PACKAGE_DIR, sources, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(purejaxppo.scale.program_cache, "PACKAGE_DIR", sources)
    cache = tmp_path / "cache"
    first = Sweep(CONFIG, num_seeds=1)
    first.compile(cache)
    again = Sweep(CONFIG, num_seeds=1)
    again.compile(cache)
    assert not first.program_cached and again.program_cached

    gae = sources / "core" / "gae.py"
    gae.write_text(gae.read_text() + "\n# an edit\n")
    edited = Sweep(CONFIG, num_seeds=1)
    edited.compile(cache)
    assert not edited.program_cached and len(list(cache.glob("*.program"))) == 2


NO_TRACING = """
import purejaxppo.core.train
def no_tracing(*args, **kwargs):
    raise AssertionError("traced the training step")
purejaxppo.core.train.rollout = no_tracing  # every update step starts with it
"""


@pytest.mark.slow
def test_cli_warm_start_in_a_fresh_process_trains_the_same_run(short_run, tmp_path):
    """A fresh process runs a loaded program (no trace has set jaxlib up, e.g. loaded LAPACK for the initializer's
    QR): the command, in a process where tracing an update fails, trains the session's short run
    (`conftest.short_run`, which left its program in the session's cache) to the same metrics. (One run: several
    go to a device each, and only one-device programs are cached.)"""
    warm = run_patched(NO_TRACING, *SHORT_RUN, "--out", str(tmp_path / "warm"))
    assert warm.returncode == 0, warm.stderr
    same_metrics(tmp_path / "warm", short_run)
