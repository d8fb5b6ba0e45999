"""A run's folder: claimed by one run at a time, recorded before anything compiles, and read back to say where a
resumed or restarted run stands.

A run holds an exclusive `flock` on `<out>/.purejaxppo.lock` for as long as it lives (the kernel releases it when
the process ends, killed or not), so a second run on the folder fails at once; creating that file is also the
check that the folder can be written, before anything compiles. A folder that holds a link, a FIFO or a device
is refused then too: a folder someone else made could otherwise point a run's writes at any file the user can
write, or hang its reads.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import os
import stat
from pathlib import Path

from purejaxppo.io.run_meta import CONFIG_FILE, RunRecord, read_config_json
from purejaxppo.scale.files import describe, dumps, foreign_entries, write_file

LOCK_FILE = ".purejaxppo.lock"
OUTPUTS = ("config.json", "metrics.csv", "learning_curve.png", "summary.json")
"""What a finished run has written; summary.json last."""


class RunDirLock:
    """The claim of one process on a run folder, held until `release` or the process's end."""

    def __init__(self, out: Path):
        self.out = Path(out)
        path = self.out / LOCK_FILE
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.EISDIR):
                raise ValueError(_foreign(self.out, path)) from None
            raise ValueError(f"cannot write to {self.out}: {e.strerror or e}; choose a folder you can write") from None
        found = os.fstat(self.fd)
        if not stat.S_ISREG(found.st_mode) or found.st_nlink > 1:  # a hard link: writing it writes another file
            os.close(self.fd)
            raise ValueError(_foreign(self.out, path) if not stat.S_ISREG(found.st_mode) else
                             f"{path} is a hard link to another file, not a file of this run's own: remove it, "
                             f"or choose another folder than {self.out}")
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.pread(self.fd, 32, 0).decode(errors="replace").strip()
            os.close(self.fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise ValueError(f"{self.out} is in use by another run (process {holder or '?'}): wait for it to "
                                 "end, or choose another folder") from None
            raise
        foreign = foreign_entries(self.out, skip=("wandb",))  # W&B links its own logs inside its folder
        if foreign:
            os.close(self.fd)
            raise ValueError(_foreign(self.out, foreign[0]))
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        os.close(self.fd)


def _foreign(out: Path, path: Path) -> str:
    return (f"{path} is {describe(path)}, not a file of this run's own: a run folder holds only what a run wrote "
            f"there; remove it, or choose another folder than {out}")


def check_folder_path(path: Path, flag: str) -> None:
    """ValueError (one line) for a folder path the file system cannot hold: a name over its NAME_MAX, or the
    whole path over PATH_MAX (otherwise the first look at it fails with a traceback)."""
    absolute = Path(os.path.abspath(path))
    existing = next(p for p in (absolute, *absolute.parents) if os.path.exists(p))  # False when too long
    try:
        name_max, path_max = os.pathconf(existing, "PC_NAME_MAX"), os.pathconf(existing, "PC_PATH_MAX")
    except OSError:  # a file system that does not say: the first write will
        return
    name_max, path_max = name_max if name_max > 0 else 1 << 30, path_max if path_max > 0 else 1 << 30
    if len(os.fsencode(str(absolute))) >= path_max:
        raise ValueError(f"{flag} {str(path)[:40]}... is {len(os.fsencode(str(absolute))):,} bytes long, over this "
                         f"system's limit of {path_max - 1:,}: choose a shorter path")
    for name in absolute.parts:
        if len(os.fsencode(name)) > name_max:
            raise ValueError(f"{flag}: the name {name[:40]}... is {len(os.fsencode(name))} bytes long, over the file "
                             f"system's limit of {name_max}: choose a shorter name")


def holds_results(out: Path) -> bool:
    """Whether `out` holds anything but a run's lock file."""
    return out.is_dir() and any(p.name != LOCK_FILE for p in out.iterdir())


def write_config_json(out: Path, record: RunRecord) -> None:
    """`config.json`, written whole or not at all (OSError, with nothing left behind, when it cannot be)."""
    write_file(Path(out) / CONFIG_FILE, dumps(record.config_json(), indent=2))


@dataclasses.dataclass(frozen=True)
class Found:
    """Where the run recorded in a folder stands."""

    record: RunRecord
    done: int | None  # updates done at its latest checkpoint; None: no checkpoint, it starts from the beginning
    outputs_written: bool  # its summary.json is there: it finished and wrote everything


def find_run(out: Path, checkpointer, allow_env: str | None = None) -> Found:
    """The run in `out`: its latest checkpoint's record and updates done, or without a checkpoint the record in
    its config.json. ValueError (one line) when it holds neither, or either is invalid, or either names a
    code-importing env that is not `allow_env`."""
    checkpoints = Path(out) / "checkpoints"
    if checkpoints.exists() and not checkpoints.is_dir():
        raise ValueError(f"{checkpoints} is not a folder, so no checkpoint could be read or saved there: move it "
                         "away, then resume")
    if checkpointer.latest() is None:
        return Found(read_config_json(out, allow_env), None, (Path(out) / "summary.json").is_file())
    record, done = checkpointer.record()
    if (Path(out) / CONFIG_FILE).is_file():  # written by the run itself: its checkpoints must be of that run
        own = read_config_json(out, allow_env)
        if own != record:
            raise ValueError(f"the checkpoint {checkpoints / str(done)} is of another run than {out}/{CONFIG_FILE} "
                             f"({_first_difference(own, record)}): put back the run's own checkpoints, or resume "
                             "that run from a folder of its own")
    return Found(record, done, (Path(out) / "summary.json").is_file())


def _first_difference(own: RunRecord, other: RunRecord) -> str:
    """What first tells `other` from `own`, e.g. "num_envs 4, not 2"."""
    ours, theirs = own.config_json(), other.config_json()
    name = next((k for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)), "config")
    return f"{name} {theirs.get(name)!r}, not {ours.get(name)!r}"
