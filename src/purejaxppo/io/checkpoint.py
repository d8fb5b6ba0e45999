"""Checkpoints of a run: everything needed to continue it, saved with orbax-checkpoint.

orbax writes each checkpoint to a temporary folder and renames it when complete, so a run killed while saving
leaves the previous checkpoint intact, and no checkpoint is ever loaded by running code (no pickle).

Layout: `<run dir>/checkpoints/<updates done>/` with two items, `state` (a pytree of host arrays: for the CLI a
`SweepState`, every run's training state and its metrics so far) and `meta` (JSON: the run's config, seeds and
sweep grid, with the updates done and the checkpoint `format`), and `digests.json`, the SHA-256 of each of its
files, written last. A checkpoint counts as complete once that file is there, and every file is checked against
it before orbax reads any: orbax does not notice every damaged file, and when it does, its failing reads leave
dozens of tracebacks on stderr.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from purejaxppo.io.run_meta import RunRecord, read_checkpoint_meta
from purejaxppo.scale.files import dumps, read_json, write_file

DIGESTS = "digests.json"
FORMAT = 2
"""The layout this version writes and the newest it reads; a checkpoint records its own in its metadata."""

ADDED_METRICS = {2: ("diverged",)}
"""Metrics a format added to the state's `metrics`: a checkpoint of an older format is restored without them, and
they read as all zeros (False) for the updates it had done."""


class CheckpointError(ValueError):
    """A checkpoint that is missing, partial, corrupt or does not fit the run; the message says which."""


class CheckpointSaveError(OSError):
    """A checkpoint that could not be written (a full disk, a folder made read-only); the message says which."""


class Checkpointer:
    """Saves and restores the state of the run in `run_dir`, keeping the latest `keep` checkpoints. Metadata
    naming a "module:factory" env is read only if it is `allow_env`, the id the user gave
    (`purejaxppo.io.run_meta.check_env_from_file`)."""

    def __init__(self, run_dir: Path, keep: int = 2, allow_env: str | None = None):
        self.directory = Path(run_dir).absolute() / "checkpoints"
        self.allow_env = allow_env
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=False, enable_async_checkpointing=False)
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def save(self, state: Any, done: int, meta: dict[str, Any]) -> None:
        """Saves `state`, a pytree of host arrays (e.g. `Sweep.to_host`'s), as the checkpoint after `done`
        updates, with JSON `meta`."""
        if jax.process_index() == 0:  # orbax writes from process 0; every process must call save
            self.directory.mkdir(parents=True, exist_ok=True)
        step = self.directory / str(done)
        if jax.process_index() == 0 and step.is_dir() and not (step / DIGESTS).is_file():
            shutil.rmtree(step)  # left by a run killed before it wrote the digests: never complete, never read
            self.manager.reload()
        if jax.process_index() == 0:  # the writer: room for it and its files' overhead, before writing any
            # the figure compared is the figure said: a margin of twice the arrays, and 256 KiB for orbax's
            # metadata files
            arrays = sum(np.asarray(x).nbytes for x in jax.tree.leaves(state))
            needed, free = 2 * arrays + 2**18, shutil.disk_usage(self.directory).free
            if free < needed:
                raise CheckpointSaveError(f"could not save the checkpoint of update {done} in {self.directory} (it"
                                          f" asks for {needed / 2**20:.2f} MiB free, twice its {arrays / 2**20:.2f} "
                                          f"MiB of arrays and 0.25 MiB for metadata; {free / 2**20:.2f} MiB are free)")
        try:
            with _stderr_kept_unless_failed():
                self.manager.save(done, args=ocp.args.Composite(
                    state=ocp.args.StandardSave(state),
                    meta=ocp.args.JsonSave({**meta, "done": done, "format": FORMAT})))
                self.manager.wait_until_finished()
            if jax.process_index() == 0:
                # replaced whole: the checkpoint is complete from here on
                write_file(step / DIGESTS, dumps(_file_digests(step), indent=1))
        except Exception as e:  # a full disk, say: the checkpoint before this one stays complete and unchanged
            raise CheckpointSaveError(f"could not save the checkpoint of update {done} in {self.directory} "
                                      f"({_cause(e)})") from e

    def latest(self) -> int | None:
        """Updates done at the latest complete checkpoint, None if there is none."""
        if not self.directory.is_dir():
            return None
        self.manager.reload()
        complete = [step for step in self.manager.all_steps() if (self.directory / str(step) / DIGESTS).is_file()]
        return max(complete, default=None)

    def meta(self, step: int | None = None) -> dict[str, Any]:
        """The JSON metadata of checkpoint `step` (default: the latest), after checking every file of the
        checkpoint and the metadata itself (`purejaxppo.io.run_meta`)."""
        step = self._latest_or_raise() if step is None else step
        self._verify(step)
        where = f"checkpoint {self.directory / str(step)}"
        try:  # bounded, and a key given twice refused, before orbax reads the file its own way
            read_json(self.directory / str(step) / "meta" / "metadata")
        except FileNotFoundError:  # orbax names what is missing
            pass
        except (OSError, ValueError) as e:
            raise CheckpointError(f"{where} is corrupt: cannot read its metadata ({e})") from None
        try:
            meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        except Exception as e:
            raise CheckpointError(f"{where} is corrupt: cannot read its metadata ({type(e).__name__})") from e
        version = meta.get("format", 1) if isinstance(meta, dict) else 1
        if not isinstance(version, int) or isinstance(version, bool):
            raise CheckpointError(f"{where} has an unreadable format {version!r}")
        if version > FORMAT:
            raise CheckpointError(f"{where} was written by a newer purejaxppo (checkpoint format {version}, "
                                  f"this version reads up to {FORMAT}): upgrade purejaxppo to read it")
        try:
            read_checkpoint_meta(meta, where, self.allow_env)
        except ValueError as e:
            raise CheckpointError(str(e)) from None
        if meta["done"] != step:  # a checkpoint copied in under another step's name
            raise CheckpointError(f"{where} was saved after update {meta['done']}, not {step}: it was moved or "
                                  "copied in from elsewhere")
        return meta

    def record(self, step: int | None = None) -> tuple[RunRecord, int]:
        """Checkpoint `step`'s (default: the latest's) run record and updates done, checked as `meta` checks
        them."""
        meta = self.meta(step)
        return read_checkpoint_meta(meta, f"checkpoint {self.directory / str(meta['done'])}", self.allow_env)

    def restore(self, template: Any, step: int | None = None) -> tuple[Any, int]:
        """Checkpoint `step`'s (default: the latest's) state as numpy arrays, in the structure, shapes and dtypes
        of `template` (host arrays or `jax.ShapeDtypeStruct`s), and the updates done when it was saved. A state
        that does not fit the template (another configuration's) is a one-line CheckpointError."""
        meta = self.meta(step)
        step, version = meta["done"], meta.get("format", 1)
        added = [name for since, names in ADDED_METRICS.items() if version < since for name in names
                 if name in getattr(template, "metrics", {})]
        if added:
            full = template.metrics
            template = template.replace(metrics={k: v for k, v in full.items() if k not in added})
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(template)))["state"]
        except Exception as e:
            raise CheckpointError(f"checkpoint {self.directory / str(step)} is corrupt or does not fit this run "
                                  f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from e
        restored = jax.tree.map(np.asarray, restored)
        _check_fits(restored, template, self.directory / str(step))
        if added:
            restored = restored.replace(metrics={**restored.metrics, **{
                name: np.zeros(full[name].shape, full[name].dtype) for name in added}})
        return restored, step

    def remove_unfinished(self) -> None:
        """Removes the folders of saves that never finished (orbax's `*.orbax-checkpoint-tmp*`, left by a process
        killed while saving). Only the run's writer, holding its folder's lock, may call it."""
        if self.directory.is_dir():
            for unfinished in self.directory.glob("*.orbax-checkpoint-tmp*"):
                shutil.rmtree(unfinished, ignore_errors=True)

    def _verify(self, step: int) -> None:
        path = self.directory / str(step)
        for link in (self.directory, path):
            if link.is_symlink():
                raise CheckpointError(f"checkpoint {path} is refused: {link} is a symbolic link, and a checkpoint "
                                      "is read only from plain files and folders")
        try:
            saved = read_json(path / DIGESTS)
            if not isinstance(saved, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as e:
            raise CheckpointError(f"checkpoint {path} is corrupt: cannot read {DIGESTS} ({type(e).__name__})") from e
        found = _file_digests(path)
        for name in sorted(set(saved) | set(found)):
            if name not in found:
                raise CheckpointError(f"checkpoint {path} is corrupt: {name} is missing")
            if saved.get(name) != found[name]:
                what = "does not match its saved digest" if name in saved else "was not part of it when saved"
                raise CheckpointError(f"checkpoint {path} is corrupt: {name} {what}")

    def _latest_or_raise(self) -> int:
        step = self.latest() if self.directory.is_dir() else None
        if step is None:
            raise CheckpointError(f"no complete checkpoint in {self.directory.parent}: nothing to resume "
                                  "(was the run started with --checkpoint-every, or killed before its first one?)")
        return step


@contextlib.contextmanager
def _stderr_kept_unless_failed(settle: float = 0.2, longest: float = 3.0):
    """Holds back what is written to stderr in the block (file descriptor 2 and `sys.stderr`, so C++ and Python
    alike): replayed when it succeeds, dropped when it raises. A failed orbax write prints a traceback from each
    of its threads, and they go on for a moment after the failure: after one, this waits until nothing has been
    written for `settle` seconds (`longest` at most) before stderr is given back."""
    sys.stderr.flush()
    with tempfile.TemporaryFile() as held:
        saved_fd, saved_stream = os.dup(2), sys.stderr
        os.dup2(held.fileno(), 2)
        sys.stderr = open(os.dup(held.fileno()), "w", closefd=True)
        failed = True
        try:
            yield
            failed = False
        finally:
            if failed:
                deadline, size = time.monotonic() + longest, -1
                while size != os.fstat(held.fileno()).st_size and time.monotonic() < deadline:
                    size = os.fstat(held.fileno()).st_size
                    time.sleep(settle)
            sys.stderr.flush()
            sys.stderr.close()
            sys.stderr = saved_stream
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            if not failed:
                held.seek(0)
                os.write(2, held.read())


def _cause(error: Exception) -> str:
    """What went wrong, in a few words: the OS's error where the message carries one (tensorstore's do)."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    code = re.search(r"os_error_code='(\d+)'", str(error))
    return os.strerror(int(code[1])) if code else (str(error).splitlines() or [type(error).__name__])[0][:160]


def _check_fits(restored: Any, template: Any, path: Path) -> None:
    """CheckpointError naming the first array of `restored` whose shape or dtype is not `template`'s."""
    saved, wanted = jax.tree.leaves_with_path(restored), jax.tree.leaves_with_path(template)
    if len(saved) != len(wanted):
        raise CheckpointError(f"checkpoint {path} does not fit this run: it holds {len(saved)} arrays, this run "
                              f"{len(wanted)}; it is another configuration's")
    for (where, a), (_, b) in zip(saved, wanted):
        if (a.shape, np.dtype(a.dtype)) != (tuple(b.shape), np.dtype(b.dtype)):
            raise CheckpointError(f"checkpoint {path} does not fit this run: {jax.tree_util.keystr(where)} is "
                                  f"{a.dtype}{list(a.shape)}, this run's is {b.dtype}{list(b.shape)}; it is another "
                                  "configuration's")


def _file_digests(step: Path) -> dict[str, str]:
    """SHA-256 of every file under the checkpoint folder `step` but `digests.json`, by relative path, read in
    blocks. A symbolic link anywhere under it, to a file or a folder, is a CheckpointError: nothing outside the
    checkpoint is ever read."""
    digests = {}
    for folder, subfolders, files in os.walk(step, followlinks=False):
        for name in sorted(subfolders + files):
            path = Path(folder) / name
            mode = os.lstat(path).st_mode
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                what = "a symbolic link" if stat.S_ISLNK(mode) else "not a plain file"
                raise CheckpointError(f"checkpoint {step} is refused: {path.relative_to(step)} is {what}, and a "
                                      "checkpoint is read only from plain files and folders")
        for name in files:
            if not name.startswith(DIGESTS):
                path = Path(folder) / name
                digest = hashlib.sha256()
                with open(path, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        digest.update(block)
                digests[path.relative_to(step).as_posix()] = digest.hexdigest()
    return dict(sorted(digests.items()))
