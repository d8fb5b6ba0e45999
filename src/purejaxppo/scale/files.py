"""The small files the package reads and writes (run and tuner folders, caches): read only when they are regular
files, never blocking and never past a size cap; written by replacing them whole, never through a link.

Why: a run folder or a cache can come from someone else (shared, unpacked, planted). Opened naively, a FIFO there
hangs the reader, a link to `/dev/zero` fills memory, and a link to any file the user can write makes a write
land there. Replacing a file (a new file in the same folder, then `rename`) swaps the link itself, never what it
points to, and a reader finds the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from pathlib import Path
from typing import IO, Any, Iterator

SMALL = 64 << 20
"""The cap on a file read whole (64 MiB): most such files the package writes are a few kB, and the largest (a
run's config.json listing a million seeds, its summary.json a grid's returns) a few MB."""


class UnsafeFile(OSError):
    """A path that is a link, a FIFO, a device or a folder where a regular file belongs, or one over its cap;
    its message says which, in a line."""

    def __str__(self) -> str:
        return str(self.strerror)


def _no_follow_error(path: Path, e: OSError) -> OSError:
    """`e` from opening `path` without following links, as UnsafeFile where the path is a link."""
    if e.errno == errno.ELOOP or (e.errno in (errno.EMLINK, errno.ENOTDIR) and os.path.islink(path)):
        return UnsafeFile(errno.ELOOP, f"{path} is a symbolic link, not a file of its own")
    return e


def read_bytes(path: Path | str, limit: int = SMALL, follow: bool = False) -> bytes:
    """`path`'s bytes: a regular file of at most `limit` bytes, opened without blocking and without following a
    link (but with `follow`, for a path the user named: a link they made is theirs). UnsafeFile otherwise; other
    OSErrors (missing, unreadable) as they come."""
    path = Path(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise _no_follow_error(path, e) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnsafeFile(errno.EINVAL, f"{path} is {_kind(mode)}, not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise UnsafeFile(errno.EFBIG, f"{path} is larger than {limit:,} bytes, far more than such a file holds")
        return data
    finally:
        os.close(fd)


def read_text(path: Path | str, limit: int = SMALL, follow: bool = False) -> str:
    """`read_bytes(path, limit, follow)` as UTF-8 text (ValueError where it is not)."""
    return read_bytes(path, limit, follow).decode()


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"the key {repeated[0]!r} is given twice")
    return dict(pairs)


def loads(text: str | bytes, nan: bool = False) -> Any:
    """JSON as the package reads it: an object that names a key twice is refused (ValueError) rather than
    keeping the last, and so are NaN and infinities, which are not JSON (but with `nan`, for files this package
    wrote with them before 2026-12-07)."""
    def constant(name: str) -> Any:
        if nan:
            return float(name)
        raise ValueError(f"{name} is not a JSON value")
    return json.loads(text, object_pairs_hook=_refuse_duplicates, parse_constant=constant)


def read_json(path: Path | str, limit: int = SMALL, nan: bool = False, follow: bool = False) -> Any:
    """`loads(read_text(path, limit, follow), nan)`: UnsafeFile, OSError or ValueError."""
    return loads(read_text(path, limit, follow), nan)


def dumps(value: Any, **kwargs: Any) -> str:
    """JSON text with a final newline; ValueError rather than a `NaN` token, which no JSON reader takes."""
    return json.dumps(value, allow_nan=False, **kwargs) + "\n"


@contextlib.contextmanager
def replacing(path: Path | str, mode: str = "w", perms: int = 0o644, **open_kwargs: Any) -> Iterator[IO]:
    """A file opened for writing that takes `path`'s place whole when the block ends, and leaves nothing behind
    when it raises. Written beside `path` (a new, exclusive file, not followed if a link) and renamed over it: a
    link at `path` is replaced, never written through."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(OSError):  # left by a killed process that had this pid
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), perms)
    try:
        try:
            f = os.fdopen(fd, mode, **open_kwargs)
        except BaseException:
            os.close(fd)
            raise
        with f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def is_stale_temporary(name: str) -> bool:
    """Whether `name` is a temporary file of `replacing` (`.<name>.<pid>.tmp`, or `<name>.<pid>.tmp` as versions
    before 2026-12-07 named them) whose process has ended: killed while writing, as nothing else leaves one."""
    parts = name.split(".")
    if len(parts) < 3 or parts[-1] != "tmp" or not parts[-2].isdigit() or int(parts[-2]) == os.getpid():
        return False
    try:
        os.kill(int(parts[-2]), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        return False
    return False


def write_file(path: Path | str, data: str | bytes, perms: int = 0o644) -> None:
    """`data` replaces `path` whole (`replacing`)."""
    with replacing(path, "wb" if isinstance(data, bytes) else "w", perms) as f:
        f.write(data)


def foreign_entries(folder: Path | str, skip: tuple[str, ...] = ()) -> list[Path]:
    """What in `folder`, at any depth, is not a regular file or a folder of its own: links, FIFOs, devices,
    sockets. Links are listed, not followed. The top-level folders named in `skip` are left out (another
    program's, which makes links of its own there)."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        if Path(root) == Path(folder):
            dirs[:] = [d for d in dirs if d not in skip or os.path.islink(Path(root, d))]
        for name in dirs + files:
            path = Path(root, name)
            mode = os.lstat(path).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                found.append(path)
    return sorted(found)


def describe(path: Path | str) -> str:
    """What `path` is, in a few words: "a symbolic link", "a FIFO", ..."""
    return _kind(os.lstat(path).st_mode)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "a file"
