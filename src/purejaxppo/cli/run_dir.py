"""A run's folder: claimed by one run at a time, recorded before anything compiles, and read back to say where a
resumed or restarted run stands.

A run holds an exclusive `flock` on `<out>/.purejaxppo.lock` for as long as it lives (the kernel releases it when
the process ends, killed or not), so a second run on the folder fails at once; creating that file is also the
check that the folder can be written, before anything compiles.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import os
from pathlib import Path

from purejaxppo.io.run_meta import CONFIG_FILE, RunRecord, read_config_json

LOCK_FILE = ".purejaxppo.lock"
OUTPUTS = ("config.json", "metrics.csv", "learning_curve.png", "summary.json")
"""What a finished run has written; summary.json last."""


class RunDirLock:
    """The claim of one process on a run folder, held until `release` or the process's end."""

    def __init__(self, out: Path):
        self.out = Path(out)
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise ValueError(f"cannot write to {self.out}: {e.strerror or e}; choose a folder you can write") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.pread(self.fd, 32, 0).decode(errors="replace").strip()
            os.close(self.fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise ValueError(f"{self.out} is in use by another run (process {holder or '?'}): wait for it to "
                                 "end, or choose another folder") from None
            raise
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        os.close(self.fd)


def holds_results(out: Path) -> bool:
    """Whether `out` holds anything but a run's lock file."""
    return out.is_dir() and any(p.name != LOCK_FILE for p in out.iterdir())


def write_config_json(out: Path, record: RunRecord) -> None:
    """`config.json`, written whole or not at all."""
    path = Path(out) / CONFIG_FILE
    tmp = path.with_name(f".{CONFIG_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record.config_json(), indent=2) + "\n")
    os.replace(tmp, path)


@dataclasses.dataclass(frozen=True)
class Found:
    """Where the run recorded in a folder stands."""

    record: RunRecord
    done: int | None  # updates done at its latest checkpoint; None: no checkpoint, it starts from the beginning
    outputs_written: bool  # its summary.json is there: it finished and wrote everything


def find_run(out: Path, checkpointer) -> Found:
    """The run in `out`: its latest checkpoint's record and updates done, or without a checkpoint the record in
    its config.json. ValueError (one line) when it holds neither, or either is invalid."""
    if checkpointer.latest() is not None:
        record, done = checkpointer.record()
    else:
        record, done = read_config_json(out), None
    return Found(record, done, (Path(out) / "summary.json").is_file())
