"""Loading a command's `main` for `python -m purejaxppo.<command>`."""

from __future__ import annotations

import importlib
import sys
from typing import Callable


def load_main(module: str, as_command: bool) -> Callable:
    """`module`'s `main`. As a command, Ctrl-C while the libraries load ends the process with one line and exit
    status 130, rather than an import traceback; imported by Python code, the KeyboardInterrupt goes on."""
    try:
        return importlib.import_module(module).main
    except KeyboardInterrupt:
        if not as_command:
            raise
        print("interrupted while starting, before anything was trained", file=sys.stderr)
        sys.exit(130)
