"""purejaxppo: Proximal Policy Optimization as pure, jit-compiled JAX functions."""

from purejaxppo.config import PPOConfig

__all__ = ["PPOConfig", "Sweep", "SweepResult", "TrainOutput", "load_policy", "make_train", "sweep"]
__version__ = "0.1.0"

_LAZY = {"TrainOutput": "purejaxppo.train", "make_train": "purejaxppo.train", "sweep": "purejaxppo.sweeps",
         "Sweep": "purejaxppo.sweeps", "SweepResult": "purejaxppo.results", "load_policy": "purejaxppo.policy"}


def __getattr__(name: str):
    # Imported on first use: gymnax runs JAX computations when imported, and a multi-host program must call
    # jax.distributed.initialize before any (purejaxppo.distributed; the CLI does it first).
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'purejaxppo' has no attribute {name!r}")
