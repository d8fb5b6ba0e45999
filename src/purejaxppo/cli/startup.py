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
