"""How a training run ends early: a signal asks it to stop (it saves a checkpoint of its last chunk of updates
first), or a run's loss or parameters turned non-finite (it keeps its last finite checkpoint)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any


class StopRequests:
    """SIGTERM, SIGINT and SIGHUP (a closed terminal or ssh connection), while in a `with` block, as requests to
    stop at the end of the current chunk of updates, saying so on stdout unless `quiet`; a second signal ends the
    process at once, with one line on stderr (`on_second`, after the signal's name).

    Python runs a signal's handler only when the main thread returns to the interpreter, and a hung program (a
    deadlocked XLA computation) never returns. So the handlers' C side also writes each signal to a pipe that a
    thread of ours reads (`signal.set_wakeup_fd`): it counts the signals and ends the process even then."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

    def __init__(self, on_second: str = "nothing saved since the last checkpoint", quiet: bool = False):
        self.signal: int | None = None
        self.on_second, self.quiet = on_second, quiet
        self._previous: dict[int, Any] = {}
        self._previous_fd: int | None = None
        self._pipe: tuple[int, int] | None = None

    def _request(self, signum, frame):  # the interpreter's side: the watcher has counted the signal already
        self.signal = self.signal or signum

    def _watch(self, read_end: int) -> None:
        received = 0  # counted here alone: the interpreter's handler may run before or after this sees a signal
        try:
            while chunk := os.read(read_end, 64):
                for signum in chunk:
                    if signum not in self.SIGNALS:
                        continue
                    received += 1
                    self.signal = self.signal or signum
                    name = signal.Signals(signum).name
                    if received > 1:
                        os.write(2, f"stopped at once by a second {name}: {self.on_second}\n".encode())
                        os._exit(128 + signum)
                    if not self.quiet:
                        _say(f"\n{name}: stopping at the end of this chunk of updates (again: at once)\n")
        except OSError:  # the pipe was closed under us
            return
        os.close(read_end)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            self._previous = {s: signal.signal(s, self._request) for s in self.SIGNALS}
            self._pipe = os.pipe()
            os.set_blocking(self._pipe[1], False)
            self._previous_fd = signal.set_wakeup_fd(self._pipe[1], warn_on_full_buffer=False)
            threading.Thread(target=self._watch, args=(self._pipe[0],), daemon=True).start()
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        if self._pipe is not None:
            signal.set_wakeup_fd(self._previous_fd)
            os.close(self._pipe[1])  # the watcher reads end-of-file and returns


def _say(line: str) -> None:
    """`line` on stdout straight from the file descriptor (the main thread may hold sys.stdout's lock); a closed
    stdout is no reason to stop counting signals."""
    with contextlib.suppress(OSError):
        os.write(1, line.encode())


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
