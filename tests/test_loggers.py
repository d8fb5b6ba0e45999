"""Experiment loggers: what they write can be read back, run by run, and equals the result's metrics.

TensorBoard event files are read with tensorboardX's protobufs (TFRecord framing parsed here; tensorboard itself
need not be installed). W&B runs offline in a subprocess under a timeout (a hang fails the test rather than
stalling it); its `.wandb` transaction logs are read with wandb's protobufs (LevelDB-log framing parsed here).
"""

import dataclasses
import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import command_limit

import purejaxppo
from purejaxppo import PPOConfig
from purejaxppo.io.loggers import Logger, TensorBoardLogger, WandbLogger, make_loggers, run_name

NUM_UPDATES = 6


@pytest.fixture(scope="module")
def result():
    """2 configurations x 2 seeds x 6 updates, with one update of one run where no episode ended (NaN)."""
    result = purejaxppo.sweep(PPOConfig(total_timesteps=512 * NUM_UPDATES), num_seeds=2, lr=[1e-4, 1e-3])
    metrics = {k: v.copy() for k, v in result.metrics.items()}
    metrics["episode_return"][1, 0, 4] = np.nan
    return dataclasses.replace(result, metrics=metrics)


def first_updates(result, n):
    """The result as the CLI sees it after `n` updates."""
    return dataclasses.replace(result, metrics={k: v[..., :n] for k, v in result.metrics.items()})


def expected_names(result):
    return {f"c{c}-lr={lr:g}-seed{seed}": (c, s)
            for c, lr in enumerate(result.hyperparams["lr"]) for s, seed in enumerate(result.seeds)}


def test_run_names_carry_configuration_and_seed(result):
    assert run_name(result, 1, 0) == "c1-lr=0.001-seed0"
    assert set(expected_names(result)) == {"c0-lr=0.0001-seed0", "c0-lr=0.0001-seed1", "c1-lr=0.001-seed0",
                                           "c1-lr=0.001-seed1"}


# --- TensorBoard ---------------------------------------------------------------------------------------------

def read_events(run_dir: Path):
    """Every Event in the run's event files (TFRecord: length u64, crc u32, data, crc u32)."""
    from tensorboardX.proto.event_pb2 import Event

    events = []
    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        data, pos = path.read_bytes(), 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = Event()
            event.ParseFromString(data[pos + 12:pos + 12 + length])
            events.append(event)
            pos += 12 + length + 4
    return events


def test_tensorboard_one_run_directory_per_config_and_seed(tmp_path, result):
    logger = TensorBoardLogger(tmp_path)
    assert isinstance(logger, Logger)
    logger.log(first_updates(result, 3), 0, 3)
    logger.log(result, 3, NUM_UPDATES)
    logger.close()

    names = expected_names(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    for name, (c, s) in names.items():
        scalars, plugins, texts = {}, {}, {}
        for event in read_events(tmp_path / name):
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
                elif value.metadata.plugin_data.plugin_name == "hparams":
                    plugins[value.tag] = value.metadata.plugin_data.content
                elif value.metadata.plugin_data.plugin_name == "text":
                    texts[value.tag] = value.tensor.string_val[0].decode()
        env_steps = result.metrics["env_steps"][c, s]
        for metric in ("episode_return", "value_loss", "entropy", "learning_rate"):
            expected = result.metrics[metric][c, s]
            keep = ~np.isnan(expected)
            steps, values = zip(*scalars[f"metrics/{metric}"])
            assert list(steps) == env_steps[keep].tolist()
            np.testing.assert_array_equal(np.float32(values), expected[keep].astype(np.float32))
        assert len(scalars["metrics/episode_return"]) == (5 if (c, s) == (1, 0) else NUM_UPDATES)  # NaN skipped
        assert len(scalars["metrics/value_loss"]) == NUM_UPDATES
        assert "metrics/env_steps" not in scalars  # it is the x axis

        from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData

        start = HParamsPluginData.FromString(plugins["_hparams_/session_start_info"]).session_start_info
        assert start.hparams["seed"].number_value == result.seeds[s]
        assert start.hparams["lr"].number_value == pytest.approx(float(result.hyperparams["lr"][c]))
        assert start.hparams["env"].string_value == "CartPole-v1"
        assert "_hparams_/session_end_info" in plugins
        config = json.loads(texts["config/text_summary"].strip("`\n"))
        assert config["seed"] == int(result.seeds[s]) and config["config_index"] == c
        assert config["lr"] == pytest.approx(float(result.hyperparams["lr"][c]))


# --- Weights & Biases ------------------------------------------------------------------------------------------

def wandb_records(path: Path):
    """The records of a `.wandb` transaction log: a 7-byte header (":W&B", magic, version), then LevelDB-log
    framed records (7-byte header: crc u32, length u16, type u8; FULL/FIRST/MIDDLE/LAST) in 32 KiB blocks."""
    from wandb.proto.wandb_internal_pb2 import Record

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, pending = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:  # zero padding
            pos += block - pos % block
            continue
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            yield Record.FromString(pending)


def read_wandb_run(run_dir: Path):
    """(display name, group, config, history {step: {key: value}}) of one offline run directory."""
    (log,) = run_dir.glob("run-*.wandb")
    name = group = None
    config, history = {}, {}
    for record in wandb_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            name, group = record.run.display_name, record.run.run_group
            config.update({i.key: json.loads(i.value_json) for i in record.run.config.update})
        elif kind == "config":
            config.update({i.key: json.loads(i.value_json) for i in record.config.update})
        elif kind == "history":
            row = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item}
            history[record.history.step.num] = row
    config.pop("_wandb", None)
    return name, group, config, history


WANDB_SCRIPT = textwrap.dedent("""
    import dataclasses, json, os, sys
    import numpy as np
    from purejaxppo import PPOConfig
    from purejaxppo.io.loggers import WandbLogger, make_loggers
    from purejaxppo.scale.results import SweepResult

    out = sys.argv[1]
    data = np.load(os.path.join(out, "result.npz"))
    config = PPOConfig(total_timesteps=512 * 6)
    result = SweepResult(config=config, hyperparams={"lr": data["lr"]}, seeds=data["seeds"],
                         metrics={k[2:]: data[k] for k in data.files if k.startswith("m_")}, params=None)
    head = dataclasses.replace(result, metrics={k: v[..., :3] for k, v in result.metrics.items()})

    def wandb_children():
        if not os.path.isdir("/proc"):
            return []
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                stat = open(f"/proc/{pid}/stat").read()
                cmd = open(f"/proc/{pid}/cmdline", "rb").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and b"wandb" in cmd:
                found.append(pid)
        return found

    # The CLI's path: the mode comes from WANDB_MODE=offline; two chunks.
    (logger,) = make_loggers(os.path.join(out, "cli"), tensorboard=False, wandb=True, wandb_project="pjp-test",
                             base_config={**config.to_dict(), "total_timesteps": 3072})
    logger.log(head, 0, 3)
    during = wandb_children()  # W&B's service process, while the runs are open
    logger.log(result, 3, 6)
    logger.close()
    left = wandb_children()

    # A resumed run: explicit mode="offline" with WANDB_MODE unset; a second logger on the same directory
    # continues the first one's runs.
    del os.environ["WANDB_MODE"]
    first = WandbLogger("pjp-test", os.path.join(out, "resumed"), mode="offline")
    first.log(head, 0, 3)
    first.close()
    second = WandbLogger("pjp-test", os.path.join(out, "resumed"), mode="offline")
    second.log(result, 3, 6)
    second.close()
    left += wandb_children()

    # Online with no API key and no terminal to ask on: a ValueError at once, before anything is trained.
    try:
        WandbLogger("pjp-test", os.path.join(out, "online"), mode="online")
        online_error = None
    except ValueError as e:
        online_error = str(e)
    left += wandb_children()
    print(json.dumps({"service_during": during, "service_left": left, "online_error": online_error}))
""")


@pytest.fixture(scope="module")
def wandb_out(tmp_path_factory, result):
    pytest.importorskip("wandb")
    out = tmp_path_factory.mktemp("wandb")
    np.savez(out / "result.npz", lr=result.hyperparams["lr"], seeds=result.seeds,
             **{f"m_{k}": v for k, v in result.metrics.items()})
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    home = out / "home"
    env.update(WANDB_MODE="offline", WANDB_CONFIG_DIR=str(home / "config"), WANDB_CACHE_DIR=str(home / "cache"),
               WANDB_DATA_DIR=str(home / "data"), NETRC=str(home / "netrc"), PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-c", WANDB_SCRIPT, str(out)], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=command_limit(), env=env, cwd=out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    if sys.platform == "linux":
        assert report["service_during"], "no wandb service process seen while logging"
    assert report["service_left"] == [], "wandb's service outlived close()"
    assert "no API key is configured" in report["online_error"]
    assert not (out / "online").exists()
    return out


@pytest.mark.slow
def test_wandb_offline_one_run_per_config_and_seed(wandb_out, result):
    run_dirs = sorted((wandb_out / "cli" / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == 4
    names = expected_names(result)
    seen = set()
    for run_dir in run_dirs:
        name, group, config, history = read_wandb_run(run_dir)
        c, s = names[name]
        seen.add(name)
        assert group == "cli"
        assert config["seed"] == int(result.seeds[s]) and config["config_index"] == c
        assert config["lr"] == pytest.approx(float(result.hyperparams["lr"][c]))
        assert config["env"] == "CartPole-v1" and config["num_envs"] == 4 and config["total_timesteps"] == 3072
        assert sorted(history) == list(range(1, NUM_UPDATES + 1))
        for u in range(NUM_UPDATES):
            row = history[u + 1]
            assert row["env_steps"] == result.metrics["env_steps"][c, s, u]
            assert np.float32(row["metrics/value_loss"]) == result.metrics["value_loss"][c, s, u]
            expected = result.metrics["episode_return"][c, s, u]
            if np.isnan(expected):
                assert "metrics/episode_return" not in row
            else:
                assert np.float32(row["metrics/episode_return"]) == expected
    assert seen == set(names)
    assert not any(p.name.endswith(".tmp") for p in (wandb_out / "cli" / "wandb").iterdir())


@pytest.mark.slow
def test_wandb_resumed_logger_continues_the_same_runs(wandb_out, result):
    wandb_dir = wandb_out / "resumed" / "wandb"
    ids = json.loads((wandb_dir / WandbLogger.IDS_FILE).read_text())
    assert sorted(ids) == sorted(expected_names(result))
    steps = {}
    for run_dir in wandb_dir.glob("offline-run-*"):
        name, _, config, history = read_wandb_run(run_dir)
        assert ids[name] in run_dir.name
        assert config["seed"] == int(result.seeds[expected_names(result)[name][1]])
        steps.setdefault(name, []).extend(history)
    assert {name: sorted(s) for name, s in steps.items()} == {name: [1, 2, 3, 4, 5, 6] for name in ids}


def test_make_loggers(tmp_path, monkeypatch):
    assert make_loggers(tmp_path, tensorboard=False, wandb=False, wandb_project="p", base_config={}) == []
    (tb,) = make_loggers(tmp_path, tensorboard=True, wandb=False, wandb_project="p", base_config={})
    assert isinstance(tb, TensorBoardLogger) and tb.log_dir == tmp_path / "tensorboard"
    assert not (tmp_path / "tensorboard").exists()  # nothing is written before the first log
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    with pytest.raises(ValueError, match=r"^--wandb needs wandb, which is not installed: pip install "
                                         r"-e '\.\[wandb\]'$"):
        make_loggers(tmp_path, tensorboard=True, wandb=True, wandb_project="p", base_config={})
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ValueError, match=r"^--tensorboard needs tensorboardX, which is not installed: pip install "
                                         r"-e '\.\[tensorboard\]'$"):
        make_loggers(tmp_path, tensorboard=True, wandb=False, wandb_project="p", base_config={})


# --- the loggers' table: a new logger is one class and its row -------------------------------------------------

LINES_LOGGER = '''
import json
from purejaxppo.io import loggers

class LinesLogger:
    """Writes each range of updates it is given as a line of JSON, and "closed" when closed."""

    def __init__(self, path):
        self.path = path

    @classmethod
    def for_run(cls, out_dir, base_config, lines_file):
        return cls(out_dir / lines_file)

    def log(self, result, start, stop):
        with open(self.path, "a") as f:
            f.write(json.dumps([start, stop, int(result.metrics["env_steps"].shape[-1])]) + "\\n")

    def close(self):
        with open(self.path, "a") as f:
            f.write("closed\\n")

loggers.LOGGERS = (*loggers.LOGGERS, loggers.LoggerFlag("lines", "log each chunk as a line", LinesLogger.for_run,
                                                        {"lines_file": ("lines.txt", "the file, in <out>")}))
'''


def test_the_flags_are_the_loggers_table(tmp_path, monkeypatch):
    from purejaxppo.cli.args import build_parser, logger_flags
    from purejaxppo.io import loggers

    args = build_parser().parse_args(["--tensorboard", "--wandb-project", "p"])
    assert logger_flags(args) == {"tensorboard": True, "wandb": False, "wandb_project": "p"}
    monkeypatch.setattr(loggers, "LOGGERS", loggers.LOGGERS)  # restored after the test
    added = {}
    exec(LINES_LOGGER, added)
    parser = build_parser()
    args = parser.parse_args(["--lines", "--lines-file", "log.txt"])
    assert logger_flags(args) == {"tensorboard": False, "wandb": False, "wandb_project": "purejaxppo",
                                  "lines": True, "lines_file": "log.txt"}
    assert "with --tensorboard or --wandb or --lines: log every N updates" in " ".join(parser.format_help().split())
    (logger,) = make_loggers(tmp_path, {}, **logger_flags(args))
    assert isinstance(logger, added["LinesLogger"]) and logger.path == tmp_path / "log.txt"


@pytest.mark.slow
def test_a_logger_added_to_the_table_logs_a_whole_run(tmp_path, monkeypatch):
    from conftest import run_main

    from purejaxppo.io import loggers

    monkeypatch.setattr(loggers, "LOGGERS", loggers.LOGGERS)  # restored after the test
    exec(LINES_LOGGER, {})
    out = tmp_path / "run"
    result = run_main("--num-envs", "4", "--num-steps", "16", "--num-minibatches", "2", "--total-timesteps", "1024",
                      "--quiet", "--lines", "--lines-file", "log.txt", "--log-every", "4", "--out", str(out))
    assert result.returncode == 0, result.stderr
    *logged, last = (out / "log.txt").read_text().splitlines()
    ranges = [json.loads(line) for line in logged]
    assert last == "closed" and ranges[0][0] == 0 and ranges[-1][1] == 16  # 16 updates, every one logged once
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:])) and all(done == stop for _, stop, done in ranges)
    assert {4, 8, 12, 16} <= {stop for _, stop, _ in ranges}  # no chunk runs past the log interval


# --- loggers handed to sweep() from Python ------------------------------------------------------------------


class Recorder:
    """A user's own logger: what it was given, and whether it was closed."""

    def __init__(self):
        self.spans, self.closed = [], False

    def log(self, result, start, stop):
        self.spans.append((start, stop, result.metrics["episode_return"].shape[-1]))

    def close(self):
        self.closed = True


@pytest.mark.slow
def test_sweep_feeds_loggers_from_python_as_the_command_does(tmp_path, capsys):
    from purejaxppo import CSVLogger, PPOConfig, ProgressBar, sweep
    from purejaxppo.io.report import write_metrics_csv

    config = PPOConfig(num_envs=4, num_steps=16, num_minibatches=2, total_timesteps=4 * 16 * 20)
    recorder, board = Recorder(), TensorBoardLogger(tmp_path / "tb")
    loggers = [CSVLogger(tmp_path / "metrics.csv"), ProgressBar(), board, recorder]
    result = sweep(config, num_seeds=2, lr=[1e-3, 3e-3], loggers=loggers, log_every=5)
    # every update logged once, in order, a chunk ending at each multiple of 5 at least; every logger closed
    assert [start for start, _, _ in recorder.spans] == [0] + [stop for _, stop, _ in recorder.spans[:-1]]
    assert {5, 10, 15, 20} <= {stop for _, stop, _ in recorder.spans} and recorder.spans[-1][1] == 20
    assert recorder.closed
    assert all(done == stop for _, stop, done in recorder.spans)  # each saw the updates so far
    # the CSV is the command's metrics.csv, row for row (the logger writes them chunk by chunk)
    write_metrics_csv(tmp_path / "whole.csv", result)
    logged, whole = (sorted((tmp_path / name).read_text().splitlines()) for name in ("metrics.csv", "whole.csv"))
    assert logged == whole and len(whole) == 1 + 2 * 2 * 20
    # TensorBoard holds each run's returns at their env steps
    events = read_events(tmp_path / "tb" / "c1-lr=0.003-seed1")
    returns = {e.step: v.simple_value for e in events for v in e.summary.value if v.tag == "metrics/episode_return"}
    steps, ret = result.metrics["env_steps"][1, 1], result.metrics["episode_return"][1, 1]
    expected = {int(s): float(r) for s, r in zip(steps, ret) if np.isfinite(r)}
    assert returns.keys() == expected.keys() and np.allclose(list(returns.values()), [expected[k] for k in returns])
    assert "20/20" in capsys.readouterr().err  # the bar reached the end


def test_a_csv_logger_never_overwrites(tmp_path):
    from purejaxppo import CSVLogger

    (tmp_path / "metrics.csv").write_text("kept")
    with pytest.raises(ValueError, match="exists already"):
        CSVLogger(tmp_path / "metrics.csv")
