"""Craftax resets: what one batched step of 64 Craftax-Classic envs costs when every env generates a fresh world
each step (the usual auto-reset, kept where an episode ended) against a sixteenth of them (`BatchedReset`'s
`resets_per_step`, as Craftax's row of `SUITES` sets it), and a step without any reset. Medians of 20 calls of
each jitted function, after compiling.

    python benchmarks/bench_craftax_resets.py
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from purejaxppo.core.envs import make_base_env

N = 64


def median_seconds(fn, *args) -> float:
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(20):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    env = make_base_env("craftax:Craftax-Classic-Symbolic-v1")
    keys = jax.random.split(jax.random.key(0), N)
    _, state = jax.vmap(env.reset)(keys)
    actions = jnp.zeros(N, jnp.int32)
    sixteenth = median_seconds(jax.jit(env.step_batch), keys, state, actions)
    env.resets_per_step = lambda n: n
    every = median_seconds(jax.jit(env.step_batch), keys, state, actions)
    bare = median_seconds(jax.jit(jax.vmap(env.unwrapped.step)), keys, env._uncarry(state.inner), actions)
    for name, seconds in (("no reset", bare), ("a sixteenth reset", sixteenth), ("every env reset", every)):
        print(f"{name:>18}: {seconds * 1e3:6.2f} ms per step of {N} envs, {N / seconds:9,.0f} env steps/s")


if __name__ == "__main__":
    main()
