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

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

DIGESTS = "digests.json"
FORMAT = 1
"""The layout this version writes and the newest it reads; a checkpoint records its own in its metadata."""


class CheckpointError(ValueError):
    """A checkpoint that is missing, partial, corrupt or does not fit the run; the message says which."""


class Checkpointer:
    """Saves and restores the state of the run in `run_dir`, keeping the latest `keep` checkpoints."""

    def __init__(self, run_dir: Path, keep: int = 2):
        self.directory = Path(run_dir).absolute() / "checkpoints"
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
        self.manager.save(done, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave({**meta, "done": done, "format": FORMAT})))
        self.manager.wait_until_finished()
        if jax.process_index() == 0:
            temporary = step / (DIGESTS + ".tmp")
            temporary.write_text(json.dumps(_file_digests(step), indent=1))
            temporary.rename(step / DIGESTS)  # atomic: the checkpoint is complete from here on

    def latest(self) -> int | None:
        """Updates done at the latest complete checkpoint, None if there is none."""
        self.manager.reload()
        complete = [step for step in self.manager.all_steps() if (self.directory / str(step) / DIGESTS).is_file()]
        return max(complete, default=None)

    def meta(self) -> dict[str, Any]:
        """The latest checkpoint's JSON metadata, after checking every file of the checkpoint."""
        step = self._latest_or_raise()
        self._verify(step)
        try:
            meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        except Exception as e:
            raise CheckpointError(f"checkpoint {self.directory / str(step)} is corrupt: cannot read its metadata "
                                  f"({type(e).__name__})") from e
        where = self.directory / str(step)
        missing = {"config", "seeds", "sweep", "done"} - set(meta if isinstance(meta, dict) else {})
        if missing:
            raise CheckpointError(f"checkpoint {where} is not a purejaxppo run's: its metadata lacks "
                                  f"{', '.join(sorted(missing))}")
        version = meta.get("format", 1)
        if not isinstance(version, int) or isinstance(version, bool):
            raise CheckpointError(f"checkpoint {where} has an unreadable format {version!r}")
        if version > FORMAT:
            raise CheckpointError(f"checkpoint {where} was written by a newer purejaxppo (checkpoint format {version}"
                                  f", this version reads up to {FORMAT}): upgrade purejaxppo to read it")
        return meta

    def restore(self, template: Any) -> tuple[Any, int]:
        """The latest checkpoint's state as numpy arrays, in the structure, shapes and dtypes of `template` (host
        arrays or `jax.ShapeDtypeStruct`s), and the updates done when it was saved."""
        step = self.meta()["done"]
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(template)))["state"]
        except Exception as e:
            raise CheckpointError(f"checkpoint {self.directory / str(step)} is corrupt or does not fit this run "
                                  f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from e
        return jax.tree.map(np.asarray, restored), step

    def _verify(self, step: int) -> None:
        path = self.directory / str(step)
        try:
            saved = json.loads((path / DIGESTS).read_text())
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


def _file_digests(step: Path) -> dict[str, str]:
    """SHA-256 of every file under the checkpoint folder `step` but `digests.json`, by relative path."""
    return {str(f.relative_to(step)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(step.rglob("*")) if f.is_file() and not f.name.startswith(DIGESTS)}
