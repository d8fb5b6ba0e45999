"""No file the commands read makes them run code. A "package.module:factory" env id imports that module and
calls the factory with the env's kwargs: typed by the user that is their own code, but read from a file (a
--config, a run's config.json, a checkpoint's metadata, a tuner's state) it is refused in one line, before
anything is imported, unless the user gave the same id too. Each case below would otherwise run
`os.system("touch <marker>")`. The commands are called in this process (`conftest.run_main`): what is tested is
what they read, not how they start."""

import json

import numpy as np
import pytest
from conftest import run_main

from purejaxppo.io.checkpoint import Checkpointer
from purejaxppo.io.policy import load_policy

EVIL = "os:system"


def _evil_config(marker) -> dict:
    return {"env": EVIL, "env_kwargs": {"command": f"touch {marker}"}}


def _refused(result, marker, where: str) -> None:
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and where in line and f"'{EVIL}'" in line and f"--env {EVIL}" in line, line
    assert not marker.exists()


def _evil_checkpoint(run_dir, marker) -> None:
    meta = {"config": _evil_config(marker), "seeds": [0], "sweep": {}, "num_updates": 1}
    Checkpointer(run_dir).save({"x": np.zeros(2, np.float32)}, 1, meta)


@pytest.mark.slow
def test_run_config_file(tmp_path):
    marker, path = tmp_path / "marker", tmp_path / "config.json"
    path.write_text(json.dumps(_evil_config(marker)))
    _refused(run_main("--config", str(path), "--out", str(tmp_path / "run")), marker, f"--config {path}")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_resume_of_a_config_json(tmp_path):
    marker, run = tmp_path / "marker", tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({**_evil_config(marker), "seeds": [0], "sweep": {}}))
    before = (run / "config.json").read_bytes()
    _refused(run_main("--resume", str(run)), marker, str(run / "config.json"))
    assert (run / "config.json").read_bytes() == before


@pytest.mark.slow
def test_resume_and_evaluate_of_a_checkpoint(tmp_path):
    marker, run = tmp_path / "marker", tmp_path / "run"
    _evil_checkpoint(run, marker)
    _refused(run_main("--resume", str(run)), marker, "checkpoint ")
    _refused(run_main(str(run), module="purejaxppo.cli.evaluate"), marker, "checkpoint ")


def test_load_policy_of_a_checkpoint(tmp_path):
    marker, run = tmp_path / "marker", tmp_path / "run"
    _evil_checkpoint(run, marker)
    with pytest.raises(ValueError, match=f"names env '{EVIL}', which imports and runs code.*env='{EVIL}'"):
        load_policy(run)
    assert not marker.exists()


@pytest.mark.slow
def test_tune_config_file_and_tune_state(tmp_path):
    marker, path = tmp_path / "marker", tmp_path / "config.json"
    path.write_text(json.dumps(_evil_config(marker)))
    _refused(run_main("--config", str(path), "--out", str(tmp_path / "tune"), module="purejaxppo.cli.tune"), marker,
             f"--config {path}")
    tuner = tmp_path / "tuner"
    tuner.mkdir()
    spec = {"config": _evil_config(marker), "params": [], "only": False, "trials": 2, "num_seeds": 1, "rungs": 1,
            "eta": 2, "confirm": 1, "confirm_seeds": 1, "seed": 0}
    (tuner / "tune_state.json").write_text(json.dumps({"spec": spec, "groups": {}, "confirmed": {}}))
    _refused(run_main("--resume", str(tuner), module="purejaxppo.cli.tune"), marker, "tune_state.json")


@pytest.mark.slow
def test_a_factory_id_in_a_file_trains_when_the_user_names_it_too(tmp_path):
    factory = "purejaxppo.examples.corridor:make"
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"env": factory, "env_kwargs": {"length": 4}, "num_envs": 4, "num_steps": 16,
                                "num_minibatches": 2, "total_timesteps": 128}))
    refused = run_main("--config", str(path), "--out", str(tmp_path / "refused"), "--quiet")
    assert refused.returncode == 2 and f"--env {factory}" in refused.stderr
    allowed = run_main("--config", str(path), "--env", factory, "--out", str(tmp_path / "run"), "--quiet")
    assert allowed.returncode == 0, allowed.stderr
    assert (tmp_path / "run" / "summary.json").is_file()


def test_the_suites_ids_are_no_code_and_load_from_files():
    from purejaxppo.core.env_ids import NAMED_PREFIXES, SUITES, is_factory_id
    from purejaxppo.core.envs import BRAX_PREFIX
    from purejaxppo.io.run_meta import check_env_from_file

    assert set(NAMED_PREFIXES) == {BRAX_PREFIX, *(suite.prefix for suite in SUITES)}
    for env_id in ("brax:ant", "brax:inverted_pendulum", "navix:Navix-Empty-5x5-v0", "CartPole-v1"):
        assert not is_factory_id(env_id)
        check_env_from_file(env_id, "config.json", None)  # read from a file, as before
    assert is_factory_id("os:system") and is_factory_id("purejaxppo.examples.corridor:make")
