"""Checkpoints of a run: everything needed to continue it, saved with orbax-checkpoint.

orbax writes each checkpoint to a temporary folder and renames it when complete, so a run killed while saving
leaves the previous checkpoint intact, and no checkpoint is ever loaded by running code (no pickle).

Layout: `<run dir>/checkpoints/<updates done>/` with two items, `state` (a `SweepState` on the host: every
run's training state and its metrics so far) and `meta` (JSON: the config, seeds, sweep grid, updates done).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from purejaxppo.sweeps import SweepState


class CheckpointError(ValueError):
    """A checkpoint that is missing, partial, corrupt or does not fit the run; the message says which."""


class Checkpointer:
    """Saves and restores the `SweepState` of the run in `run_dir`, keeping the latest `keep` checkpoints."""

    def __init__(self, run_dir: Path, keep: int = 2):
        self.directory = Path(run_dir).absolute() / "checkpoints"
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=False, enable_async_checkpointing=False)
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def save(self, state: SweepState, meta: dict[str, Any]) -> None:
        """Saves a host `state` (from `Sweep.to_host`) as checkpoint `state.done`, with JSON `meta`."""
        if jax.process_index() == 0:  # orbax writes from process 0; every process must call save
            self.directory.mkdir(parents=True, exist_ok=True)
        meta = {**meta, "done": state.done, "digest": digest(state)}
        self.manager.save(state.done, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))
        self.manager.wait_until_finished()

    def latest(self) -> int | None:
        """Updates done at the latest complete checkpoint, None if there is none."""
        self.manager.reload()
        return self.manager.latest_step()

    def meta(self) -> dict[str, Any]:
        """The latest checkpoint's JSON metadata."""
        step = self._latest_or_raise()
        try:
            meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        except Exception as e:
            raise CheckpointError(f"checkpoint {self.directory / str(step)} is corrupt: cannot read its metadata "
                                  f"({type(e).__name__})") from e
        missing = {"config", "seeds", "sweep", "done"} - set(meta or {})
        if missing:
            raise CheckpointError(f"checkpoint {self.directory / str(step)} is not a purejaxppo run's: its metadata "
                                  f"lacks {', '.join(sorted(missing))}")
        return meta

    def restore(self, template: SweepState) -> SweepState:
        """The latest checkpoint's state, in the structure, shapes and dtypes of `template` (a host state)."""
        meta = self.meta()
        step = meta["done"]
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(template)))["state"]
        except Exception as e:
            _ignore_closed_event_loop_errors()
            raise CheckpointError(f"checkpoint {self.directory / str(step)} is corrupt or does not fit this run "
                                  f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from e
        restored = SweepState(*jax.tree.map(np.asarray, (restored.state, restored.metrics)), step)
        if meta.get("digest") not in (None, digest(restored)):
            raise CheckpointError(f"checkpoint {self.directory / str(step)} is corrupt: its arrays do not match "
                                  "the digest saved with them")
        return restored

    def _latest_or_raise(self) -> int:
        step = self.latest() if self.directory.is_dir() else None
        if step is None:
            raise CheckpointError(f"no complete checkpoint in {self.directory.parent}: nothing to resume "
                                  "(was the run started with --checkpoint-every, or killed before its first one?)")
        return step


def _ignore_closed_event_loop_errors() -> None:
    """Drops the `RuntimeError: Event loop is closed` reports that orbax leaves when restoring a corrupt
    checkpoint fails: its other reads, still in flight, complete on tensorstore threads after orbax has closed
    the event loop that awaited them, and each completion is reported as an unraisable exception (dozens of
    tracebacks after the one-line error). Every other unraisable exception goes to the previous hook."""
    previous = sys.unraisablehook
    if getattr(previous, "_purejaxppo_filter", False):
        return

    def hook(unraisable):
        exc = unraisable.exc_value
        if not (isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed"):
            previous(unraisable)

    hook._purejaxppo_filter = True
    sys.unraisablehook = hook


def digest(state: SweepState) -> str:
    """SHA-256 of every array of a host `state`, in tree order: saved with a checkpoint, checked on restore
    (orbax does not notice every damaged data file)."""
    h = hashlib.sha256()
    for x in jax.tree.leaves((state.state, state.metrics)):
        x = np.ascontiguousarray(x)
        h.update(f"{x.dtype}{x.shape}".encode())
        h.update(x.tobytes())
    return h.hexdigest()
