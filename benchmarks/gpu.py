"""The GPU benchmark: purejaxppo, and rejax's PPO beside it where rejax installs, on CartPole-v1 at 1, 64 and 1024
seeds and Breakout-MinAtar at 1 and 256 seeds. For each: compile seconds, env steps/s of one call of the compiled
training program, and the final return; a markdown table on stdout (and in `--out`).

    python benchmarks/gpu.py [--out gpu-table.md] [--no-rejax]      # on a GPU: under 8 minutes on one
    python benchmarks/gpu.py --smoke                                     # tiny sizes, any device (a test runs it)

The work is matched as in `bench_rejax.py` (its workloads, hyperparameters and builders: constant learning rate,
value clipping on, each library's own initializers and optimizers); seeds are vmapped in one program, split over
the devices for purejaxppo as its `Sweep` does. The final return is measured alike for both, after training and
outside the timings: the mean return of `EPISODES` episodes per seed with sampled actions, averaged over seeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).parent))  # bench_rejax, beside this file

from bench_rejax import WORKLOADS, build_purejaxppo, build_rejax, hyperparameters  # noqa: E402
from machine import header  # noqa: E402

EPISODES = 16


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str  # bench_rejax's workload: its env and hyperparameters
    seeds: int


FULL = [Workload("cartpole", 1), Workload("cartpole", 64), Workload("cartpole", 1024),
        Workload("breakout", 1), Workload("breakout", 256)]
SMOKE = [Workload("cartpole", 1), Workload("cartpole", 4), Workload("breakout", 2)]


def episode_returns(env_id: str, act_fn: Callable, params: Any, seeds: int, episodes: int) -> Any:
    """`[seeds, episodes]` returns of each seed's policy (`act_fn(params)(obs, rng)`), sampled, all at once."""
    import gymnax
    import jax
    import jax.numpy as jnp

    env, env_params = gymnax.make(env_id)

    def one_episode(seed_params, key):
        act = act_fn(seed_params)
        obs, state = env.reset(key, env_params)

        def body(carry):
            obs, state, key, total, done, t = carry
            key, key_act, key_step = jax.random.split(key, 3)
            obs, state, reward, terminated, truncated, _ = env.step(key_step, state, act(obs, key_act), env_params)
            return obs, state, key, total + jnp.where(done, 0.0, reward), done | terminated | truncated, t + 1

        carry = (obs, state, key, jnp.float32(0.0), jnp.bool_(False), jnp.int32(0))
        carry = jax.lax.while_loop(lambda c: ~c[4] & (c[5] < env_params.max_steps_in_episode), body, carry)
        return carry[3]

    keys = jax.random.split(jax.random.PRNGKey(1000), seeds * episodes).reshape(seeds, episodes, -1)
    return jax.jit(jax.vmap(jax.vmap(one_episode, (None, 0))))(params, keys)


def measure(implementation: str, workload: Workload, smoke: bool = False) -> dict[str, Any]:
    """Compiles and runs one implementation's program once (two updates with `smoke`); its figures."""
    import jax
    import numpy as np

    from purejaxppo.scale.compilation import compiler_options
    from purejaxppo.scale.parallel import runs_sharding

    ours = implementation == "purejaxppo"
    spec = WORKLOADS[workload.name]
    hp = hyperparameters(spec)
    if smoke:
        hp["total_timesteps"] = 2 * hp["num_envs"] * hp["num_steps"]
    train, act_fn = (build_purejaxppo if ours else build_rejax)(spec["env"], hp)
    keys = jax.random.split(jax.random.PRNGKey(0), workload.seeds)
    vmapped = jax.vmap(train)
    if ours:  # as purejaxppo's Sweep places runs: split over every device
        program = jax.jit(vmapped, in_shardings=runs_sharding(num_runs=workload.seeds),
                          compiler_options=compiler_options())
    else:
        program = jax.jit(vmapped)
    start = time.perf_counter()
    compiled = program.lower(keys).compile()
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    params = jax.block_until_ready(compiled(keys))
    run_seconds = time.perf_counter() - start
    returns = np.asarray(episode_returns(spec["env"], act_fn, params, workload.seeds, EPISODES))
    return dict(compile_s=compile_seconds, steps_per_s=hp["total_timesteps"] * workload.seeds / run_seconds,
                final_return=float(returns.mean()), steps=hp["total_timesteps"])


def row(workload: Workload, results: dict[str, dict[str, Any] | None]) -> str:
    spec = WORKLOADS[workload.name]
    ours, theirs = results["purejaxppo"], results.get("rejax")
    cells = [f"{spec['env']}", f"{workload.seeds:,}", f"{ours['steps']:,}"]
    for key, fmt in (("steps_per_s", "{:,.0f}"), ("compile_s", "{:.1f}"), ("final_return", "{:.1f}")):
        if theirs is None:
            cells.append(f"{fmt.format(ours[key])} / -")
        else:
            ratio = f" ({ours[key] / theirs[key]:.2f}x)" if key != "final_return" and theirs[key] else ""
            cells.append(f"{fmt.format(ours[key])} / {fmt.format(theirs[key])}{ratio}")
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (two updates per run), any device")
    parser.add_argument("--no-rejax", action="store_true", help="purejaxppo alone, even where rejax is installed")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    import jax

    try:
        import rejax  # noqa: F401
        with_rejax = not args.no_rejax
    except ImportError:
        with_rejax = False
    workloads = SMOKE if args.smoke else FULL
    device = jax.devices()[0]
    lines = [header(), "", f"{len(jax.devices())} x {device.device_kind}; rejax "
             f"{'beside it' if with_rejax else 'not installed or not asked for'}"
             f"{'; SMOKE sizes, not a measurement' if args.smoke else ''}", "",
             "| env | seeds | env steps per seed | env steps/s purejaxppo / rejax | compile s | "
             f"final return ({EPISODES} sampled episodes a seed) |", "|---|---:|---:|---:|---:|---:|"]
    for workload in workloads:
        results = {impl: measure(impl, workload, args.smoke)
                   for impl in ("purejaxppo", "rejax") if impl == "purejaxppo" or with_rejax}
        lines.append(row(workload, results))
        print(lines[-1], file=sys.stderr, flush=True)
    table = "\n".join(lines) + "\n"
    print(table, end="")
    if args.out:
        args.out.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
