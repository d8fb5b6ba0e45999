"""Experiment loggers for the CLI: TensorBoard and Weights & Biases, fed from host arrays after each chunk.

A logger gets the whole `SweepResult` so far and the range of updates to log, `start` to `stop - 1`, of every
run (configuration x seed). Each run is a run of its own in the logger, named after its configuration and seed,
e.g. `c1-lr=0.001-ent_coef=0.01-seed3`, with its hyperparameters and seed recorded. The x axis is env steps
(per run); updates in which no episode ended (NaN episode return) leave that point out.

    loggers = make_loggers(out, config.to_dict(), tensorboard=True, wandb=False)
    for logger in loggers:
        logger.log(result, start, stop)      # after each chunk of updates
    for logger in loggers:
        logger.close()

Both are optional extras (`pip install -e '.[tensorboard]'`, `pip install -e '.[wandb]'`), imported only when
asked for. `LOGGERS` lists them for the training command, which makes a flag of each: a new logger is a class
(`log`, `close`, and `for_run` to make it for a run's folder) and its row there.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import math
import os
import struct
import sys
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

from purejaxppo.core.metrics import in_report_order
from purejaxppo.scale.files import dumps, read_bytes, read_json, write_file
from purejaxppo.scale.results import SweepResult

STEP_METRIC = "env_steps"  # the x axis; not logged as a curve of its own in TensorBoard


@runtime_checkable
class Logger(Protocol):
    def log(self, result: SweepResult, start: int, stop: int) -> None:
        """Logs updates `start` to `stop - 1` of every run of `result` (metrics `[C, S, U_so_far]`)."""

    def close(self) -> None:
        """Flushes and releases everything; the logger is not used afterwards."""


def run_name(result: SweepResult, c: int, s: int) -> str:
    """`c<config>-<name>=<value>-...-seed<seed>`, e.g. `c1-lr=0.001-ent_coef=0.01-seed3` (`c0-seed3` unswept)."""
    swept = [f"{k}={float(v[c]):g}" for k, v in result.hyperparams.items()]
    return "-".join([f"c{c}", *swept, f"seed{int(result.seeds[s])}"])


def run_config(result: SweepResult, c: int, s: int, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The full config of run (c, s) as plain Python values: `base` (default `result.config.to_dict()`) with the
    configuration's swept values, plus `seed` and `config_index`."""
    config = dict(result.config.to_dict() if base is None else base)
    config.update({k: float(v[c]) for k, v in result.hyperparams.items()})
    config.update(seed=int(result.seeds[s]), config_index=c)
    return config


def _metric_names(result: SweepResult) -> list[str]:
    """The metrics to log, in METRICS order, then any others; the step metric excluded."""
    return [m for m in in_report_order(result.metrics) if m != STEP_METRIC]


def _check_range(result: SweepResult, start: int, stop: int) -> None:
    done = result.metrics[STEP_METRIC].shape[-1]
    if not 0 <= start <= stop <= done:
        raise ValueError(f"cannot log updates {start}..{stop - 1}: the result holds updates 0..{done - 1}")


EVENTS_LIMIT = 1 << 31
"""The cap on an event file read back (a run's scalars take a few MB): a link to a device must not fill memory."""


def _last_logged_steps(run_dir: Path) -> dict[str, int]:
    """Each `metrics/` scalar's largest step in the TensorBoard event files of `run_dir` (a run killed while its
    writer was writing may have written some of a step's scalars and not others). Event files are TFRecord files
    of `Event` protos; a record cut short ends the file."""
    from tensorboardX.proto.event_pb2 import Event

    last: dict[str, int] = {}
    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        data, offset = read_bytes(path, limit=EVENTS_LIMIT), 0
        while offset + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            record = data[offset + 12:offset + 12 + length]
            offset += 12 + length + 4
            if len(record) < length or offset > len(data):
                break
            event = Event.FromString(record)
            for value in event.summary.value:
                if value.tag.startswith("metrics/"):
                    last[value.tag] = max(last.get(value.tag, -1), event.step)
    return last


class TensorBoardLogger:
    """TensorBoard event files, one run directory per configuration and seed: `<log_dir>/<run_name>/`.

    Each metric is a scalar `metrics/<name>` at global step = env steps. A run's hyperparameters are written at
    its first log both for the HParams dashboard (every config field, the seed and the configuration index,
    with metric `metrics/episode_return`) and as text (`config`, JSON). A logger made again on the same folder (a
    resumed run) logs only the steps its event files do not hold yet: each step once, in order (a resumed run
    recomputes the updates after its checkpoint bit for bit, so the values already there are the same).
    """

    def __init__(self, log_dir: str | os.PathLike):
        self.tensorboardx = _import_extra("tensorboardX", "--tensorboard", "tensorboard")
        self.log_dir = Path(log_dir)
        self.writers: dict[tuple[int, int], Any] = {}
        self.logged: dict[tuple[int, int], dict[str, int]] = {}  # each scalar's last step a run's files hold

    @classmethod
    def for_run(cls, out_dir: Path, base_config: dict[str, Any]) -> TensorBoardLogger:
        """The training command's: event files under `<out_dir>/tensorboard/`."""
        return cls(out_dir / "tensorboard")

    def _writer(self, result: SweepResult, c: int, s: int):
        if (c, s) not in self.writers:
            from tensorboardX.summary import hparams

            run_dir = self.log_dir / run_name(result, c, s)
            self.logged[c, s] = _last_logged_steps(run_dir) if run_dir.is_dir() else {}
            writer = self.tensorboardx.SummaryWriter(str(run_dir), flush_secs=30)
            if not self.logged[c, s]:
                config = run_config(result, c, s)
                values = {k: v if isinstance(v, (bool, int, float, str)) else json.dumps(v)
                          for k, v in config.items()}
                experiment, session_start, _ = hparams(values, {"metrics/episode_return": 0.0})
                for summary in (experiment, session_start):
                    writer.file_writer.add_summary(summary)
                writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```")
            self.writers[c, s] = writer
        return self.writers[c, s]

    def log(self, result: SweepResult, start: int, stop: int) -> None:
        _check_range(result, start, stop)
        names = _metric_names(result)
        steps = result.metrics[STEP_METRIC]
        num_configs, num_seeds = steps.shape[:2]
        for c in range(num_configs):
            for s in range(num_seeds):
                writer = self._writer(result, c, s)
                logged = self.logged[c, s]
                for u in range(start, stop):
                    step = int(steps[c, s, u])
                    for name in names:
                        value = float(result.metrics[name][c, s, u])
                        tag = f"metrics/{name}"
                        # NaN: no episode ended (returns), or undefined (variance); logged: a resumed run's files
                        if math.isfinite(value) and step > logged.get(tag, -1):
                            writer.add_scalar(tag, value, step)
                writer.flush()

    def close(self) -> None:
        from tensorboardX.summary import hparams

        _, _, session_end = hparams({}, {})
        for writer in self.writers.values():
            writer.file_writer.add_summary(session_end)
            writer.close()
        self.writers.clear()


class WandbLogger:
    """Weights & Biases: one W&B run per configuration and seed, all in `group` (default: `run_dir`'s name).

    Each run's `config` is the full PPOConfig dict (`config`, default the result's) with that configuration's
    swept values, its `seed` and `config_index`; its name is `run_name`. Metrics are logged as `metrics/<name>`
    against `env_steps` (W&B's own step is the update number, 1-based). Files go under `<run_dir>/wandb/`.

    `mode` is W&B's ("online", "offline", "disabled"); None leaves it to W&B: the WANDB_MODE environment
    variable, else `wandb offline`/`wandb online`'s setting, else online. Offline, nothing touches the network:
    sync later with `wandb sync <run_dir>/wandb/offline-run-*`. Online without an API key (and no terminal to
    prompt on) is a ValueError here, at construction, rather than after the first chunk has trained.

    The runs' ids are kept in `<run_dir>/wandb/purejaxppo_runs.json`, so a logger made again on the same
    `run_dir` (a resumed CLI run) continues the same W&B runs instead of starting new ones. (W&B ignores steps
    at or below a run's last logged step: updates logged again after a resume are dropped there.)
    """

    IDS_FILE = "purejaxppo_runs.json"

    def __init__(self, project: str, run_dir: str | os.PathLike, mode: str | None = None,
                 config: dict[str, Any] | None = None, group: str | None = None, entity: str | None = None):
        self.wandb = wandb = _import_extra("wandb", "--wandb", "wandb")
        self.project, self.mode, self.entity = project, mode, entity
        effective = mode if mode is not None else wandb.setup().settings.mode  # WANDB_MODE, settings files
        if effective not in ("offline", "dryrun", "disabled"):
            # Online needs credentials: fail now, not after compiling and training the first chunk. No network
            # (verify=False); a terminal gets W&B's login prompt.
            interactive = sys.stdin is not None and sys.stdin.isatty()
            try:
                if "prompt" in inspect.signature(wandb.login).parameters:  # recent wandb
                    logged_in = wandb.login(verify=False, prompt=interactive)
                else:  # older: prompts when it can, raises UsageError when it cannot
                    logged_in = wandb.login(verify=False)
            except wandb.errors.UsageError:
                logged_in = False
            if not logged_in:
                if wandb.run is None:
                    wandb.teardown()
                raise ValueError("W&B is in online mode and no API key is configured: run `wandb login`, set "
                                 "WANDB_API_KEY, or log offline with WANDB_MODE=offline (and `wandb sync` later)")
        self.run_dir = Path(run_dir).absolute()
        self.group = group or self.run_dir.name
        self.base_config = config
        self.runs: dict[tuple[int, int], Any] = {}

    @classmethod
    def for_run(cls, out_dir: Path, base_config: dict[str, Any], wandb_project: str) -> WandbLogger:
        """The training command's: under `<out_dir>/wandb/`, grouped by `out_dir`'s name, mode from WANDB_MODE."""
        return cls(wandb_project, out_dir, config=base_config)

    def _ids(self) -> dict[str, str]:
        path = self.run_dir / "wandb" / self.IDS_FILE
        return read_json(path) if path.exists() else {}

    def _save_ids(self, ids: dict[str, str]) -> None:
        path = self.run_dir / "wandb" / self.IDS_FILE
        write_file(path, dumps(ids, indent=2))

    def _start_runs(self, result: SweepResult) -> None:
        wandb = self.wandb
        (self.run_dir / "wandb").mkdir(parents=True, exist_ok=True)
        ids = self._ids()
        settings = wandb.Settings(
            console="off",  # many runs in one process: none of them captures stdout/stderr
            silent=True,  # no banner per run
            x_disable_stats=True,  # no system-metrics sampler per run
        )
        num_configs, num_seeds = result.metrics[STEP_METRIC].shape[:2]
        for c in range(num_configs):
            for s in range(num_seeds):
                name = run_name(result, c, s)
                resumed = name in ids
                run = wandb.init(
                    project=self.project, entity=self.entity, dir=str(self.run_dir), mode=self.mode,
                    group=self.group, job_type="train", name=name,
                    config=run_config(result, c, s, self.base_config),
                    id=ids.get(name), resume="allow" if resumed else None,
                    reinit="create_new",  # every run stays open side by side; wandb.run is left alone
                    settings=settings,
                )
                run.define_metric(STEP_METRIC)
                run.define_metric("metrics/*", step_metric=STEP_METRIC)
                ids[name] = run.id
                self.runs[c, s] = run
        self._save_ids(ids)

    def log(self, result: SweepResult, start: int, stop: int) -> None:
        _check_range(result, start, stop)
        if not self.runs:
            self._start_runs(result)
        names = _metric_names(result)
        steps = result.metrics[STEP_METRIC]
        for (c, s), run in self.runs.items():
            for u in range(start, stop):
                row = {STEP_METRIC: int(steps[c, s, u])}
                for name in names:
                    value = float(result.metrics[name][c, s, u])
                    if math.isfinite(value):
                        row[f"metrics/{name}"] = value
                run.log(row, step=u + 1)

    def close(self) -> None:
        for run in self.runs.values():
            run.finish()
        self.runs.clear()
        if self.wandb.run is None:  # no run of the caller's own is active: stop W&B's service process now
            self.wandb.teardown()


def _import_extra(module: str, flag: str, extra: str):
    """`module`, or a one-line ValueError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValueError(f"{flag} needs {module}, which is not installed: pip install -e '.[{extra}]'") from None


@dataclasses.dataclass(frozen=True)
class LoggerFlag:
    """A logger the training command offers: `--<name>` turns it on, `options` are string flags of its own (name ->
    (default, help); a help writes % as %%), `make(out_dir, base_config, **options)` makes it for a run."""

    name: str
    help: str
    make: Callable[..., Logger]
    options: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)


LOGGERS = (
    LoggerFlag("tensorboard", "also log every metric of every run as TensorBoard events, in <out>/tensorboard",
               TensorBoardLogger.for_run),
    LoggerFlag("wandb", "also log to Weights & Biases, one W&B run per configuration and seed, files in <out>/wandb "
               "(WANDB_MODE=offline works without a network)", WandbLogger.for_run,
               {"wandb_project": ("purejaxppo", "W&B project (default purejaxppo)")}),
)
"""The training command's loggers, in the order of their flags: it builds the flags from this table, so a new
logger is its class and its row here."""


def make_loggers(out_dir: str | os.PathLike, base_config: dict[str, Any], **flags: Any) -> list[Logger]:
    """The loggers of `LOGGERS` that `flags` turn on (`tensorboard=True`, options by name), for a run writing to
    `out_dir`; ValueError, before anything is written, for one whose extra is not installed."""
    return [entry.make(Path(out_dir), base_config, **{name: flags.get(name, default)
                                                      for name, (default, _) in entry.options.items()})
            for entry in LOGGERS if flags.get(entry.name)]
