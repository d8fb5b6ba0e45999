"""What the commands set up in their own process before training: deferred imports, the compile caches' folder,
XLA's log level. Nothing here is done to a process that imports the library (a notebook, a user's script)."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import types
from pathlib import Path


class _DeferredModule(types.ModuleType):
    """Stands in `sys.modules` for a module until one of its attributes is first read, then imports it."""

    def __getattr__(self, attr: str):
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        real = importlib.import_module(self.__name__)
        self.__dict__.update(real.__dict__)  # later reads through this stand-in find everything directly
        return getattr(real, attr)


def defer_renderer_imports() -> None:
    """gymnax's renderers import matplotlib.pyplot and seaborn (with pandas and scipy) when gymnax is imported,
    seconds of every start that training never uses: until a renderer first uses them, stand-ins take their
    place in `sys.modules`. Must come before gymnax is imported; only the commands call it."""
    for name in ("matplotlib.pyplot", "seaborn"):
        sys.modules.setdefault(name, _DeferredModule(name))


def compile_cache_dir() -> Path:
    """Where the CLI keeps JAX's persistent compilation cache, and in its `programs/` the traced programs
    (`purejaxppo.scale.program_cache`): $PUREJAXPPO_CACHE, else the user cache folder."""
    if os.environ.get("PUREJAXPPO_CACHE"):
        return Path(os.environ["PUREJAXPPO_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "purejaxppo" / "jax"


class _StdoutThatMayClose:
    """sys.stdout, until a reader closes it (`... | head -1`): then everything written to it is dropped, for the
    run goes on and writes its results. (Its lines are information; a closed pipe is no reason to stop.)"""

    def __init__(self, stream):
        self._stream = stream

    def _dropped(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())  # Python's own flush at exit, and os.write(1, ...), land there too
        os.close(devnull)

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._dropped()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._dropped()

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def tolerate_closed_stdout() -> None:
    """Makes sys.stdout drop what it is given once its reader has closed it, instead of raising
    BrokenPipeError in the middle of a run. The commands call it first."""
    if not isinstance(sys.stdout, _StdoutThatMayClose) and sys.stdout is not None:
        sys.stdout = _StdoutThatMayClose(sys.stdout)


@contextlib.contextmanager
def quiet_xla_logs():
    """Silences XLA's C++ log while loading from the compilation cache: on every cache hit it prints a benign
    ERROR that the cached code's tuning flags (+prefer-no-gather...) are not host CPU features."""
    try:
        from jax._src.lib import utils  # private; if it moves, the log just stays as it is
        utils.absl_set_min_log_level(3)
    except (ImportError, AttributeError):
        yield
        return
    try:
        yield
    finally:
        utils.absl_set_min_log_level(0)
