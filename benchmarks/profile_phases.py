"""Where one PPO update's time goes: rollout, GAE and the minibatch update, each compiled and timed alone.

    python benchmarks/profile_phases.py [--env CartPole-v1] [--updates 200] [--set num_envs=64 ...]

Each phase runs `--updates` times inside one `lax.scan`, as in training (the rollout carries its envs on, the
update its parameters and optimizer state), from a state after one real update. It prints per phase: compile
seconds, milliseconds per update, and the size of the optimized program XLA runs (instructions, fusions and
loops in its HLO; CPU milliseconds count every thread's time, and change less than wall time with the other
load of a shared machine), then the whole `update_step` for comparison: the phases' sum should come close to it.
"""

from __future__ import annotations

import argparse
import ast
import re
import time

import jax
import jax.numpy as jnp

from purejaxppo import PPOConfig
from purejaxppo.core.gae import gae
from purejaxppo.core.rollout import rollout
from purejaxppo.core.train import make_components, make_trainer
from purejaxppo.core.update import update


def hlo_size(compiled) -> str:
    text = compiled.as_text()
    instructions = sum(1 for line in text.splitlines() if re.match(r"\s+(ROOT )?%?\S+ = ", line))
    fusions, loops = len(re.findall(r" fusion\(", text)), len(re.findall(r" while\(", text))
    return f"{instructions} instructions, {fusions} fusions, {loops} loops"


def timed(name: str, fn, arg, updates: int, report: list) -> None:
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(arg).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(arg))  # first call: allocations, thread pools
    runs, cpu = [], []
    for _ in range(5):
        start, start_cpu = time.perf_counter(), time.process_time()
        jax.block_until_ready(compiled(arg))
        runs.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    ms, cpu_ms = 1e3 * min(runs) / updates, 1e3 * min(cpu) / updates
    report.append((name, compile_s, ms, hlo_size(compiled)))
    print(f"| {name} | {compile_s:.2f} | {ms:.3f} | {cpu_ms:.3f} | {hlo_size(compiled)} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="config overrides")
    args = parser.parse_args()
    overrides = {k: ast.literal_eval(v) for k, v in (s.split("=", 1) for s in args.set)}
    config = PPOConfig.for_env(args.env, **overrides)
    n = args.updates
    trainer = make_trainer(config)
    parts = make_components(config)
    env = parts.env
    policy, tx = parts.policy, parts.tx
    state, _ = jax.jit(trainer.update_step)(jax.jit(trainer.init)(jax.random.key(0)))

    envs, tr = jax.jit(lambda s: rollout(env, policy, s.params, s.env, s.key, config.num_steps))(state)
    advantages, returns = gae(rewards=tr.reward, values=tr.value, next_values=tr.next_value,
                              terminations=tr.terminated, dones=tr.done, gamma=config.gamma,
                              gae_lambda=config.gae_lambda)
    batch = policy.batch(tr, tr.obs, advantages, returns)

    def rollout_phase(s):
        def body(carry, key):
            carry, tr = rollout(env, policy, s.params, carry, key, config.num_steps)
            return carry, tr.reward.sum() + tr.next_value.sum()
        return jax.lax.scan(body, s.env, jax.random.split(s.key, n))[1].sum()

    def gae_phase(t):
        def body(total, i):  # rewards shifted by i: a different problem each time, nothing hoisted out
            a, r = gae(rewards=t.reward + i, values=t.value, next_values=t.next_value, terminations=t.terminated,
                       dones=t.done, gamma=config.gamma, gae_lambda=config.gae_lambda)
            return total + a.sum() + r.sum(), None
        return jax.lax.scan(body, 0.0, jnp.arange(n, dtype=jnp.float32))[0]

    def update_phase(s):
        def body(carry, key):
            params, opt_state = carry
            params, opt_state, metrics = update(params, opt_state, batch, key, loss=parts.loss(state.kl_beta),
                                                policy=policy, tx=tx, epochs=config.update_epochs,
                                                num_minibatches=config.num_minibatches, early_stop=parts.early_stop)
            return (params, opt_state), metrics["policy_loss"]
        return jax.lax.scan(body, (s.params, s.opt_state), jax.random.split(s.key, n))[1].sum()

    def whole(s):
        return jax.lax.scan(lambda s, _: trainer.update_step(s), s, length=n)[1]["policy_loss"].sum()

    print(f"{config.env}: {config.num_envs} envs x {config.num_steps} steps, {config.update_epochs} epochs x "
          f"{config.num_minibatches} minibatches; {n} updates per program; jax {jax.__version__} on "
          f"{jax.devices()[0].platform}\n")
    print("| phase | compile s | ms per update | CPU ms per update | optimized HLO |")
    print("|---|---:|---:|---:|---|")
    report: list = []
    timed("rollout (incl. env steps)", rollout_phase, state, n, report)
    timed("GAE", gae_phase, tr, n, report)
    timed("update (epochs x minibatches)", update_phase, state, n, report)
    timed("whole update_step", whole, state, n, report)
    parts = sum(r[2] for r in report[:3])
    print(f"\nphases sum to {parts:.3f} ms per update; the whole update_step takes {report[3][2]:.3f} ms "
          f"({config.batch_size / report[3][2] * 1e3:,.0f} env steps/s)")


if __name__ == "__main__":
    main()
