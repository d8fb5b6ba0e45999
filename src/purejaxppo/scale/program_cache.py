"""A disk cache of traced programs, so that a warm start skips tracing.

JAX's persistent compilation cache skips XLA's compilation, but looking a program up in it takes the program
itself: tracing the whole training step in Python, seconds on a CPU (benchmarks/README.md). This cache keeps
the traced program (`jax.export`, serialized StableHLO) under a key of everything the trace depends on: the
caller's description of the program, the source of purejaxppo, the versions of the libraries that trace into it
and the JAX settings that change a trace. A program loaded from it compiles to the same executable, which the
compilation cache then supplies.

An entry is two files: `<key>.program`, jax.export's own serialization of the program (a function of a flat list
of arrays), and `<key>.json`, plain data the caller needs to rebuild its arguments' structure, with the entry's
key and the program's SHA-256. Nothing in either is executed as Python when loaded (no pickle). Only regular files
are read, never blocking; an entry whose key or digest does not match (copied from another configuration's key,
say) or that cannot be read is traced again and replaced. The folders are made private to the user (mode 0700),
the files readable by the user alone.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import export

from purejaxppo.core import env_ids
from purejaxppo.scale.files import read_bytes, write_file

# Whatever traces into a program: a new version may trace it differently.
_LIBRARIES = ("jax", "jaxlib", "flax", "optax", "gymnax", "distrax", "chex", "tensorflow-probability", "tfp-nightly",
              "numpy")  # and every suite's (`_libraries`)
_JAX_SETTINGS = ("jax_enable_x64", "jax_default_prng_impl", "jax_threefry_partitionable",
                 "jax_default_matmul_precision")


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


PACKAGE_DIR = Path(__file__).resolve().parent.parent
"""purejaxppo's source folder: every `*.py` under it, in every sub-package, is part of a program's key."""


def _sources_digest() -> str:
    """SHA-256 over every source file of purejaxppo, sub-packages included, by path relative to the package."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _libraries() -> tuple[str, ...]:
    """The packages whose versions decide a traced program: the core's, and each suite row's."""
    return (*_LIBRARIES, *(name for suite in env_ids.SUITES for name in (suite.package, *suite.libraries)))


def program_key(description: dict[str, Any]) -> str:
    """The cache key of the program `description` (JSON-able) names, in this environment."""
    parts = {
        "program": description,
        "sources": _sources_digest(),
        "libraries": {name: _version(name) for name in _libraries()},
        "settings": {name: str(getattr(jax.config, name, None)) for name in _JAX_SETTINGS},
        "python": platform.python_version(),
        # The kind of device, not how many: cached programs run on one device, and a resumed run may see more.
        "device": [jax.devices()[0].platform, str(jax.devices()[0].device_kind)],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def private_dir(directory: Path) -> Path:
    """`directory`, made if need be with its missing parents, readable and writable by the user alone."""
    directory = Path(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    return directory


def load(directory: Path, key: str) -> tuple[export.Exported, dict[str, Any]] | None:
    """The program stored under `key` and its caller's data, or None when there is no readable entry made for
    `key` (an entry copied from another key, or with another program beside it, is not one)."""
    base = Path(directory) / key
    try:
        data = json.loads(read_bytes(base.with_suffix(".json")))
        program = read_bytes(base.with_suffix(".program"), limit=1 << 31)  # a big network's program: MBs
        if not isinstance(data, dict) or data.get("key") != key or data.get(
                "program_sha256") != hashlib.sha256(program).hexdigest():
            return None
        exported = export.deserialize(bytearray(program))
    except Exception:  # missing, damaged, of another key or format: traced again
        return None
    # jaxlib loads LAPACK (which the orthogonal initializer's QR calls) when it first lowers a LAPACK call, and a
    # program that is loaded rather than traced lowers none: without this, it crashes on CPU.
    jax.jit(jnp.linalg.qr).lower(np.eye(2, dtype=np.float32))
    return exported, data["data"]


def store(directory: Path, key: str, exported: export.Exported, data: dict[str, Any]) -> None:
    """Keeps `exported` and the JSON-able `data` under `key`, the entry naming its key and its program's digest;
    each file is replaced whole (a reader finds the old one, the new one or none), and a reader checks that the
    two belong together."""
    base = private_dir(directory) / key
    program = bytes(exported.serialize())
    entry = {"key": key, "program_sha256": hashlib.sha256(program).hexdigest(), "data": data}
    files = ((base.with_suffix(".program"), program), (base.with_suffix(".json"), json.dumps(entry).encode()))
    for path, payload in files:
        write_file(path, payload, perms=0o600)
