"""A disk cache of traced programs, so that a warm start skips tracing.

JAX's persistent compilation cache skips XLA's compilation, but looking a program up in it takes the program
itself: tracing the whole training step in Python, seconds on a CPU (benchmarks/README.md). This cache keeps
the traced program (`jax.export`, serialized StableHLO) under a key of everything the trace depends on: the
caller's description of the program, the source of purejaxppo, the versions of the libraries that trace into it
and the JAX settings that change a trace. A program loaded from it compiles to the same executable, which the
compilation cache then supplies.

Programs are functions of a flat list of arrays; their input and output pytree structures are kept beside them
(pickled: this cache, like JAX's, is the user's own).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import pickle
import platform
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import export

# Whatever traces into a program: a new version may trace it differently.
_LIBRARIES = ("jax", "jaxlib", "flax", "optax", "gymnax", "distrax", "chex", "tensorflow-probability", "numpy",
              "brax", "mujoco")
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


def program_key(description: dict[str, Any]) -> str:
    """The cache key of the program `description` (JSON-able) names, in this environment."""
    parts = {
        "program": description,
        "sources": _sources_digest(),
        "libraries": {name: _version(name) for name in _LIBRARIES},
        "settings": {name: str(getattr(jax.config, name, None)) for name in _JAX_SETTINGS},
        "python": platform.python_version(),
        "devices": [str(d.device_kind) for d in jax.devices()],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def load_or_export(
    directory: Path,
    key: str,
    fn: Callable[..., Any],
    make_args: Callable[[], tuple[Any, ...]],
) -> tuple[export.Exported, tuple[Any, Any], bool]:
    """The traced program `fn(*make_args())` from `directory`, or traced and stored there.

    `make_args()` returns a tuple of arrays or `jax.ShapeDtypeStruct`s (any pytree); it is called only to trace.
    Returns the exported program, a function of the flat list of the arguments' leaves returning the flat list of
    its outputs' leaves; the pytree structures `(in_tree, out_tree)` of the arguments and the outputs; and whether
    it came from the cache. An entry that cannot be read (damaged, or of another format) is traced and replaced.
    """
    path = Path(directory) / f"{key}.program"
    try:
        with open(path, "rb") as f:
            trees, serialized = pickle.load(f)
        exported = export.deserialize(bytearray(serialized))
    except Exception:  # missing, damaged or stale: traced below
        exported = None
    if exported is not None:
        # jaxlib loads LAPACK (which the orthogonal initializer's QR calls) when it first lowers a LAPACK call,
        # and a program that is loaded rather than traced lowers none: without this, it crashes on CPU.
        jax.jit(jnp.linalg.qr).lower(np.eye(2, dtype=np.float32))
        return exported, trees, True

    leaves, in_tree = jax.tree.flatten(make_args())
    out_trees = []

    def flat(*flat_args):
        out_leaves, out_tree = jax.tree.flatten(fn(*jax.tree.unflatten(in_tree, flat_args)))
        out_trees.append(out_tree)
        return out_leaves

    exported = export.export(jax.jit(flat))(*[jax.ShapeDtypeStruct(x.shape, x.dtype) for x in leaves])
    trees = (in_tree, out_trees[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        pickle.dump((trees, bytes(exported.serialize())), f)
    os.replace(tmp, path)  # atomic: a reader finds no entry or a whole one
    return exported, trees, False
