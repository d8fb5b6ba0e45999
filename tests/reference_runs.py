"""Short training runs whose metrics and final parameters are stored in `tests/data/reference_runs.npz`.

They were stored before the package was reorganized into layers, and a refactoring must reproduce them bit for
bit (`tests/test_reference_runs.py` reruns them in a fresh process with two CPU devices and compares):

    JAX_NUM_CPU_DEVICES=2 python tests/reference_runs.py tests/data/reference_runs.npz

Only the public API is used, so the script runs unchanged on either side of a refactoring.
"""

from __future__ import annotations

import sys

import jax
import numpy as np

from purejaxppo import PPOConfig, make_train, sweep

# The per-env defaults these runs were stored with, spelled out: tuning changes `ENV_DEFAULTS`, not the stored runs.
PENDULUM = dict(num_envs=16, num_steps=128, num_minibatches=8, update_epochs=10, lr=1e-3, gamma=0.95, ent_coef=0.0,
                clip_value=False)
MEMORYCHAIN = dict(recurrent=True, num_envs=16, num_steps=32, lr=1e-3)

RUNS = {
    "cartpole": PPOConfig(env="CartPole-v1", total_timesteps=4 * 128 * 8),
    "cartpole_shared_kl_stop": PPOConfig(env="CartPole-v1", total_timesteps=4 * 128 * 6, shared_torso=True,
                                         kl_early_stop=True, kl_target=0.002),
    "cartpole_kl_penalty": PPOConfig(env="CartPole-v1", total_timesteps=4 * 128 * 6, objective="kl_penalty"),
    "pendulum": PPOConfig(env="Pendulum-v1", total_timesteps=16 * 128 * 4, **PENDULUM),
    "mountaincar_continuous_normalized": PPOConfig(env="MountainCarContinuous-v0", total_timesteps=16 * 128 * 4,
                                                   num_envs=16, ent_coef=0.0, normalize_obs=True,
                                                   normalize_reward=True),
    "memorychain_recurrent": PPOConfig(env="MemoryChain-bsuite", total_timesteps=16 * 32 * 6, **MEMORYCHAIN),
    "memorychain_recurrent_kl_penalty": PPOConfig(env="MemoryChain-bsuite", total_timesteps=16 * 32 * 4,
                                                  objective="kl_penalty", **MEMORYCHAIN),
}
SWEEP = dict(config=PPOConfig(env="CartPole-v1", total_timesteps=4 * 128 * 6), num_seeds=2, seed=3,
             lr=[1e-3, 2.5e-4])


def compute() -> dict[str, np.ndarray]:
    """Every run's metrics (`<run>/<metric>`) and final parameters (`<run>/params/<i>`, in leaf order)."""
    out = {}
    for name, config in RUNS.items():
        result = jax.jit(make_train(config))(jax.random.key(0))
        _store(out, name, result.metrics, result.params)
    result = sweep(**SWEEP)
    _store(out, "sweep", result.metrics, result.params)
    return out


def _store(out, name, metrics, params):
    for metric, values in metrics.items():
        out[f"{name}/{metric}"] = np.asarray(values)
    for i, leaf in enumerate(jax.tree.leaves(params)):
        out[f"{name}/params/{i}"] = np.asarray(leaf)


if __name__ == "__main__":
    np.savez_compressed(sys.argv[1], **compute())
