"""How a training run ends early: a signal asks it to stop (it saves a checkpoint of its last chunk of updates
first), or a run's loss or parameters turned non-finite (it keeps its last finite checkpoint)."""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
from pathlib import Path
from typing import Any


class StopRequests:
    """SIGTERM and SIGINT, while in a `with` block, as requests to stop at the end of the current chunk of updates;
    a second signal stops at once."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def _request(self, signum, frame):
        if self.signal is not None:  # asked twice: no more waiting
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
        self.signal = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            self._previous = {s: signal.signal(s, self._request) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)


@dataclasses.dataclass
class Stopped:
    """Why a run ended before its last update."""

    signal: int | None = None  # stopped by this signal
    diverged: tuple[int, int] | None = None  # (update, run): the first update (1-based) that turned non-finite


def report_stop(config: Any, out: Path, done: int, checkpointer: Any, stopped: Stopped) -> int:
    """One line on stderr saying why a run of `config` writing to `out` stopped after `done` updates, what is
    kept and how to go on; returns the exit status."""
    if stopped.signal is not None:
        name = signal.Signals(stopped.signal).name
        kept = (f"checkpoint saved at update {done}/{config.num_updates}" if done else
                "nothing trained yet, nothing saved")
        print(f"stopped by {name}: {kept}; continue with: python -m purejaxppo.run --resume {out}",
              file=sys.stderr, flush=True)
        return 128 + stopped.signal
    update, run = stopped.diverged
    last = checkpointer.latest() if checkpointer else None
    kept = f"its last finite checkpoint, update {last}, is kept" if last else "no checkpoint was saved before it"
    print(f"error: run {run} diverged at update {update}/{config.num_updates} (a non-finite loss or parameter): "
          f"lower --lr or --max-grad-norm; {kept}; the results up to it are in {out}/", file=sys.stderr, flush=True)
    return 1
