"""purejaxppo: Proximal Policy Optimization as pure, jit-compiled JAX functions."""

from purejaxppo.config import PPOConfig
from purejaxppo.train import TrainOutput, make_train

__all__ = ["PPOConfig", "TrainOutput", "make_train"]
__version__ = "0.1.0"
