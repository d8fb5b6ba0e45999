"""Files a command reads or writes in a run folder, a tuner folder or a cache: nothing is written through a link,
no read blocks or fills memory, JSON that names a key twice is refused, and nothing temporary is left behind
(issue #33's probes: a folder someone else made, shared or unpacked, must not turn a command against the user).

Each command runs in this process (`conftest.run_main`) and fails before anything compiles, in one line.
"""

import json
import os
import shutil
import subprocess

import pytest
from conftest import SHORT_RUN, one_line, run_main

from purejaxppo.cli.caches import usable_cache_dir
from purejaxppo.cli.run_dir import LOCK_FILE
from purejaxppo.scale import files

pytestmark = pytest.mark.slow


@pytest.fixture
def finished_but_unwritten(short_run, tmp_path):
    """A copy of the session's short run as a run killed after its final checkpoint leaves it: `--resume` writes
    its outputs without compiling."""
    run = tmp_path / "run"
    shutil.copytree(short_run, run)
    (run / "summary.json").unlink()
    return run


@pytest.mark.parametrize("name", ["metrics.csv", "learning_curve.png", LOCK_FILE, "checkpoints/extra"])
def test_resume_refuses_a_folder_with_a_link_and_writes_nothing_through_it(finished_but_unwritten, tmp_path, name):
    run, target = finished_but_unwritten, tmp_path / "precious.txt"
    target.write_text("the user's own file\n")
    (run / name).unlink(missing_ok=True)
    os.symlink(target, run / name)
    line = one_line(run_main("--resume", str(run)))
    assert f"{run / name} is a symbolic link" in line and "remove it" in line
    assert target.read_text() == "the user's own file\n"
    assert not (run / "summary.json").exists()


def test_a_fifo_as_the_lock_file_is_one_line(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    os.mkfifo(out / LOCK_FILE)
    line = one_line(run_main(*SHORT_RUN, "--out", str(out)))
    assert "is a FIFO" in line


def test_outputs_replace_a_link_rather_than_write_through_it(tmp_path):
    target, path = tmp_path / "target", tmp_path / "out.json"
    target.write_text("kept")
    os.symlink(target, path)
    files.write_file(path, files.dumps({"a": 1}))
    assert target.read_text() == "kept" and not path.is_symlink() and json.loads(path.read_text()) == {"a": 1}


def test_a_write_that_fails_leaves_nothing_behind(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "inside").write_text("")  # a folder in the way: the rename fails
    with pytest.raises(OSError):
        files.write_file(tmp_path / "taken", "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_a_temporary_file_of_a_killed_writer_is_swept_from_the_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("PUREJAXPPO_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache" / "programs").mkdir(parents=True)
    ended = subprocess.Popen(["true"])
    ended.wait()
    dead = ended.pid
    stale = tmp_path / "cache" / "programs" / f".abc.program.{dead}.tmp"
    old_style = tmp_path / "cache" / f"cpu_split.json.{dead}.tmp"  # as versions before 2026-12-07 named theirs
    alive = tmp_path / "cache" / "programs" / f".abc.json.{os.getppid()}.tmp"
    stale.write_bytes(b"half")
    old_style.write_bytes(b"half")
    alive.write_bytes(b"being written")
    assert usable_cache_dir() == tmp_path / "cache"
    assert not stale.exists() and not old_style.exists() and alive.exists()


@pytest.mark.limit(20)  # a FIFO read would block: refusing it must not read it
@pytest.mark.parametrize("plant", ["fifo", "dev-zero link", "huge"])
def test_a_config_json_that_would_hang_or_fill_memory_is_refused(tmp_path, plant):
    run = tmp_path / "run"
    run.mkdir()
    if plant == "fifo":
        os.mkfifo(run / "config.json")
    elif plant == "dev-zero link":
        os.symlink("/dev/zero", run / "config.json")
    else:
        with open(run / "config.json", "wb") as f:
            f.truncate(files.SMALL + 1)  # sparse: no disk used
    line = one_line(run_main("--resume", str(run)))
    assert {"fifo": "is a FIFO", "dev-zero link": "is a symbolic link", "huge": "is larger than"}[plant] in line


@pytest.mark.limit(20)
@pytest.mark.parametrize("path", ["/dev/zero", "fifo"])
def test_a_config_flag_naming_a_device_or_a_fifo_is_refused(tmp_path, path):
    if path == "fifo":
        path = tmp_path / "fifo"
        os.mkfifo(path)
    line = one_line(run_main(*SHORT_RUN, "--config", str(path), "--out", str(tmp_path / "run")))
    assert "not a regular file" in line
    assert not (tmp_path / "run").exists()


def test_json_that_names_a_key_twice_is_refused(tmp_path):
    config = tmp_path / "config.json"
    config.write_text('{"lr": 0.1, "lr": 0.001}')
    line = one_line(run_main(*SHORT_RUN, "--config", str(config), "--out", str(tmp_path / "run")))
    assert "the key 'lr' is given twice" in line
    with pytest.raises(ValueError, match="NaN is not a JSON value"):
        files.loads('{"lr": NaN}')
    with pytest.raises(ValueError):
        files.dumps({"mean": float("nan")})


def test_a_hard_linked_lock_file_is_refused_and_its_other_name_untouched(tmp_path):
    out, other = tmp_path / "run", tmp_path / "other.txt"
    out.mkdir()
    other.write_text("kept\n")
    os.link(other, out / LOCK_FILE)
    assert "is a hard link to another file" in one_line(run_main(*SHORT_RUN, "--out", str(out)))
    assert other.read_text() == "kept\n"


def test_a_config_the_user_names_through_a_link_of_their_own_is_read(tmp_path):
    (tmp_path / "best.json").write_text('{"lr": 0.001}')
    os.symlink(tmp_path / "best.json", tmp_path / "mine.json")
    result = run_main(*SHORT_RUN, "--total-timesteps", "512", "--config", str(tmp_path / "mine.json"),
                      "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "run" / "config.json").read_text())["lr"] == 0.001


def test_an_out_that_is_a_file_says_so(tmp_path):
    (tmp_path / "a-file").write_text("")
    assert "is a file, not a folder" in one_line(run_main(*SHORT_RUN, "--out", str(tmp_path / "a-file")))


def test_a_wandb_folder_with_its_own_links_does_not_make_a_run_folder_foreign(tmp_path):
    from purejaxppo.scale.files import foreign_entries

    (tmp_path / "wandb" / "run-1").mkdir(parents=True)
    os.symlink(tmp_path / "wandb" / "run-1", tmp_path / "wandb" / "latest-run")  # as wandb.init makes it
    assert foreign_entries(tmp_path, skip=("wandb",)) == []
    os.symlink(tmp_path / "elsewhere", tmp_path / "metrics.csv")
    assert foreign_entries(tmp_path, skip=("wandb",)) == [tmp_path / "metrics.csv"]
