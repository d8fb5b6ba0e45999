"""purejaxppo: Proximal Policy Optimization as pure, jit-compiled JAX functions.

    from purejaxppo import PPOConfig, make_train, sweep, load_policy, evaluate

The package is layered, each layer importing only those before it: `core` (the traced training program: envs,
networks, rollout, GAE, losses, update, train), `scale` (sweeps, devices and hosts, compiled-program caches),
`io` (results on disk: checkpoints, policies, evaluation, reports, loggers) and `cli` (the commands
`python -m purejaxppo.run` and `python -m purejaxppo.evaluate`).
"""

from purejaxppo.core.config import PPOConfig

__all__ = ["CSVLogger", "PPOConfig", "ProgressBar", "Sweep", "SweepResult", "TensorBoardLogger", "TrainOutput",
           "WandbLogger", "evaluate", "load_policy", "make_train", "sweep"]
__version__ = "0.1.0"

# Imported on first use: gymnax runs JAX computations when imported, and a multi-host program must call
# jax.distributed.initialize before any (purejaxppo.scale.distributed; the CLI does it first).
_LAZY = {"TrainOutput": "purejaxppo.core.train", "make_train": "purejaxppo.core.train",
         "sweep": "purejaxppo.scale.sweep", "Sweep": "purejaxppo.scale.sweep",
         "SweepResult": "purejaxppo.scale.results", "load_policy": "purejaxppo.io.policy",
         "evaluate": "purejaxppo.io.evaluation", "CSVLogger": "purejaxppo.io.chunk_loggers",
         "ProgressBar": "purejaxppo.io.chunk_loggers", "TensorBoardLogger": "purejaxppo.io.loggers",
         "WandbLogger": "purejaxppo.io.loggers"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'purejaxppo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
