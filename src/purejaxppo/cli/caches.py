"""The commands' caches on disk: JAX's compilation cache and, in its `programs/`, the traced programs
(`purejaxppo.scale.program_cache`). Checked before a run claims its folder, and never trusted blindly:

- a folder that cannot be used (a read-only home, `$PUREJAXPPO_CACHE` naming a file) means training without the
  caches, after one warning line, rather than a traceback after the run's folder was claimed;
- anything in the folders that is not a regular file (a FIFO would block its reader for good, a link could lead
  anywhere) is removed before JAX looks there, and so is a temporary file whose writer was killed;
- an entry of JAX's cache that fails to load is moved aside once (JAX itself would warn on every later run and
  never rewrite it), so that the program is compiled and stored again;
- every file is readable by the user alone (mode 0600), in folders of mode 0700.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import warnings
from pathlib import Path

from purejaxppo.cli.startup import compile_cache_dir
from purejaxppo.scale.files import is_stale_temporary
from purejaxppo.scale.program_cache import private_dir

DAMAGED = ".damaged"
"""The suffix a damaged entry of JAX's cache is moved aside with."""


def usable_cache_dir() -> Path | None:
    """The caches' folder, made private and checked writable, with anything in it that is not a regular file
    removed; None, after one warning line on stderr, when it cannot be used."""
    directory = compile_cache_dir()
    try:
        private_dir(directory / "programs")
        private_dir(directory)
        probe = directory / f".probe.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        for folder in (directory, directory / "programs"):
            _remove_special_files(folder)
    except OSError as e:
        print(f"warning: the compile cache {directory} cannot be used ({e.strerror or type(e).__name__}): training "
              "without it (set PUREJAXPPO_CACHE to a writable folder, or pass --no-compile-cache)", file=sys.stderr,
              flush=True)
        return None
    return directory


def _remove_special_files(folder: Path) -> None:
    for entry in os.scandir(folder):
        with contextlib.suppress(FileNotFoundError):  # another run sharing the cache renamed or removed it
            mode = entry.stat(follow_symlinks=False).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)) or is_stale_temporary(entry.name):
                os.unlink(entry.path)


def use_compilation_cache(directory: Path) -> None:
    """Points JAX's compilation cache at `directory`, with damaged entries moved aside as they are met."""
    import jax

    jax.config.update("jax_compilation_cache_dir", str(directory))
    _move_damaged_entries_aside()


def _move_damaged_entries_aside() -> None:
    """Wraps JAX's cache read (`jax._src.compiler._cache_read`, private: where it is missing, JAX's own behaviour
    stays) so that an entry it cannot load is renamed `<entry>` + DAMAGED, and JAX then stores a fresh one. The
    folder is read when an entry fails, not when the wrapper is made: a process may point the cache elsewhere."""
    import jax

    try:
        from jax._src import compiler
    except ImportError:
        return
    read = getattr(compiler, "_cache_read", None)
    if read is None or getattr(read, "moves_damaged_entries_aside", False):
        return

    def read_or_move_aside(module_name, cache_key, *args, **kwargs):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = read(module_name, cache_key, *args, **kwargs)
        for warning in caught:
            if "persistent compilation cache entry" not in str(warning.message):
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
                continue
            entry = Path(jax.config.jax_compilation_cache_dir) / f"{cache_key}-cache"
            with contextlib.suppress(OSError):
                os.replace(entry, entry.with_name(entry.name + DAMAGED))
                print(f"warning: the compile cache's entry {entry} could not be loaded: moved aside to "
                      f"{entry.name + DAMAGED}, compiled again", file=sys.stderr, flush=True)
        return result

    read_or_move_aside.moves_damaged_entries_aside = True
    compiler._cache_read = read_or_move_aside


def make_files_private(directory: Path) -> None:
    """Mode 0600 for the files JAX wrote into `directory` with the process's umask (the folder is 0700)."""
    for entry in os.scandir(directory):
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False) and stat.S_IMODE(entry.stat().st_mode) != 0o600:
                os.chmod(entry.path, 0o600)
