"""One command line, one result: where a sweep's runs go follows the command and the device count alone, so the
same command on the same machine trains the same numbers whatever the caches hold.

The placement once followed a speed measurement cached per machine (`cpu_split.json`): a re-measurement near its
threshold flipped it, and with it the returns, since a run's last bits depend on how many runs share its device.
Each command here is a fresh process, where `use_cpu_cores` makes a device per core as it does for a user.
"""

import json
import os
import shutil

import pytest
from conftest import cli_env, read_metrics, run_cli, xla_flags

from purejaxppo.scale.compilation import cpu_cores

pytestmark = [pytest.mark.slow, pytest.mark.portable]  # fresh processes with a device per core

COMMAND = ["--env", "CartPole-v1", "--num-seeds", "2", "--total-timesteps", "20000", "--num-envs", "4", "--quiet"]


def train(out, cache, home) -> list[dict[str, str]]:
    env = cli_env(PUREJAXPPO_CACHE=str(cache), XDG_CACHE_HOME=str(home), XLA_FLAGS=xla_flags(), JAX_PLATFORMS="cpu")
    env.pop("JAX_NUM_CPU_DEVICES", None)
    result = run_cli(*COMMAND, "--out", str(out), env=env)
    assert result.returncode == 0, result.stderr
    return read_metrics(out / "metrics.csv")


def plant(folder, answer: float) -> None:
    """Every placement answer the old per-machine cache could hold, set to `answer` (1.0: the runs stay on one
    device; 3.0: they split), in the file the first run left or, where it left none, under a fresh key."""
    path = folder / "cpu_split.json"
    stored = json.loads(path.read_text()) if path.is_file() else {"format": 1, "speedups": {"planted": 0.0}}
    path.write_text(json.dumps({"format": 1, "speedups": {key: answer for key in stored["speedups"]}}))


@pytest.mark.skipif(cpu_cores() < 2, reason="one core: one device, nothing to place")
def test_one_command_gives_one_result_whatever_the_caches_hold(tmp_path):
    first = train(tmp_path / "first", tmp_path / "cache", tmp_path / "home")
    for answer in (1.0, 3.0):
        cache, home = tmp_path / f"cache-{answer}", tmp_path / f"home-{answer}"
        shutil.copytree(tmp_path / "cache", cache)
        (home / "purejaxppo").mkdir(parents=True)
        plant(cache, answer)
        plant(home / "purejaxppo", answer)
        again = train(tmp_path / f"again-{answer}", cache, home)
        assert again == first, f"with the cached answer {answer}, the same command trained other numbers"
    summary = json.loads((tmp_path / "first" / "summary.json").read_text())
    assert summary["num_devices"] == 2  # the rule: every device a core made, up to one per run


@pytest.mark.limit(60)  # a read of the FIFO would block for good
@pytest.mark.parametrize("plant", ["fifo", "dev-zero link"])
def test_what_is_planted_where_the_placement_cache_was_kept_is_never_read(tmp_path, plant):
    """The default cache location, `$PUREJAXPPO_CACHE` unset: a FIFO planted as the old placement cache hung every
    multi-seed run, and a link to /dev/zero read without end; nothing reads that file now."""
    home = tmp_path / "home"
    (home / "purejaxppo").mkdir(parents=True)
    if plant == "fifo":
        os.mkfifo(home / "purejaxppo" / "cpu_split.json")
    else:
        os.symlink("/dev/zero", home / "purejaxppo" / "cpu_split.json")
    env = cli_env(XDG_CACHE_HOME=str(home), XLA_FLAGS=xla_flags(), JAX_PLATFORMS="cpu")
    for name in ("PUREJAXPPO_CACHE", "JAX_NUM_CPU_DEVICES"):
        env.pop(name, None)
    result = run_cli(*COMMAND, "--total-timesteps", "1024", "--no-compile-cache", "--out", str(tmp_path / "run"),
                     env=env)
    assert result.returncode == 0, result.stderr
