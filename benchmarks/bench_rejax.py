"""purejaxppo beside rejax's PPO, side by side in one benchmark run, on matched work.

    python benchmarks/bench_rejax.py [--workloads cartpole cartpole-8 breakout pendulum] [--repeats 3]
        [--return-seeds 8] [--purejaxrl DIR]
    make bench-rejax ARGS="--repeats 3"

With `--purejaxrl DIR`, a checkout of PureJaxRL (`git clone https://github.com/luchris429/purejaxrl DIR`), its
`purejaxrl/ppo.py` runs as a third implementation on the discrete workloads (its file for continuous actions is
another program, so Pendulum has two columns). PureJaxRL is a set of single files, not a package: it is read from
the checkout, never copied into this project.

Each measurement runs in a fresh process (cold in-process caches, the persistent compilation cache off, its own
peak memory), and the two implementations alternate, which one goes first swapping every repeat, so the noise
of a shared machine falls on both alike. Per workload and implementation it reports the median and range over
the repeats of: compile seconds (jit lowering + XLA compilation of the whole training program), run seconds (one
call of the compiled program), env steps/s, XLA's memory estimate of the program (arguments + outputs +
temporaries), the process's peak resident memory, and the final return; then purejaxppo / rejax for each.
Then, as one seed's return says little, each implementation trains `--return-seeds` seeds (default 8) in one more
process and the table adds their mean final return with its 95% confidence interval: the learning outcome.

Matched work: the same env, envs x steps, epochs, minibatches, gradient steps, MLP sizes and activation, learning
rate (constant: rejax does not anneal), clipping, coefficients and value clipping (rejax always clips the value
with clip_eps), rejax's evaluation off, purejaxppo's per-update metrics unused (only the final parameters are
kept). What stays each library's own: rejax trains actor and critic with two Adam optimizers (each clipped to
max_grad_norm) and flax's default initializers, and treats every episode end as terminal; purejaxppo uses one Adam
over both networks and orthogonal initializers, and bootstraps truncated episodes from their final observation. And
each is compiled and placed as its library does it: purejaxppo's programs with its CPU options
(`purejaxppo.scale.compilation.compiler_options`), its seeds split over one XLA device per CPU core
(`use_cpu_cores`, as its CLI and `Sweep` do); rejax's through a plain `jax.jit` on one device, with XLA's
defaults. The final return is measured the same way for both, after training and outside the timings: rejax's own
`evaluate` (128 episodes per seed, sampled actions), averaged over seeds.

rejax 0.1.3 unpacks gymnax's old 5-value `step`; `FiveTupleStep` adapts gymnax 1.x to it (done = terminated or
truncated, as rejax treats every episode end).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np

from purejaxppo.scale.stats import mean_ci95

WORKLOADS: dict[str, dict[str, Any]] = {
    # PureJaxRL's CartPole settings: 4 envs x 128 steps, 4 epochs x 4 minibatches, 64x64 tanh, ~5e5 steps.
    "cartpole": dict(env="CartPole-v1", seeds=1, num_envs=4, num_steps=128, update_epochs=4, num_minibatches=4,
                     hidden_sizes=(64, 64), activation="tanh", lr=2.5e-4, total_timesteps=976 * 512),
    "cartpole-8": dict(env="CartPole-v1", seeds=8, num_envs=4, num_steps=128, update_epochs=4, num_minibatches=4,
                       hidden_sizes=(64, 64), activation="tanh", lr=2.5e-4, total_timesteps=976 * 512),
    # PureJaxRL's MinAtar settings: 64 envs x 128 steps, 4 epochs x 8 minibatches, relu, ~1e6 steps.
    "breakout": dict(env="Breakout-MinAtar", seeds=1, num_envs=64, num_steps=128, update_epochs=4,
                     num_minibatches=8, hidden_sizes=(64, 64), activation="relu", lr=5e-3,
                     total_timesteps=122 * 8192),
    # purejaxppo's Pendulum-v1 defaults (16 envs x 128 steps, 10 epochs x 8 minibatches, lr 1e-3, gamma 0.95, no
    # entropy bonus), value clipping on as rejax has it.
    "pendulum": dict(env="Pendulum-v1", seeds=1, num_envs=16, num_steps=128, update_epochs=10, num_minibatches=8,
                     hidden_sizes=(64, 64), activation="tanh", lr=1e-3, gamma=0.95, ent_coef=0.0,
                     total_timesteps=488 * 2048),
}
SHARED = dict(gamma=0.99, gae_lambda=0.95, clip_eps=0.2, ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5)
IMPLEMENTATIONS = ("purejaxppo", "rejax")
EVAL_EPISODES = 128


def hyperparameters(workload: dict[str, Any]) -> dict[str, Any]:
    return {**SHARED, **{k: v for k, v in workload.items() if k not in ("env", "seeds")}}


class FiveTupleStep:
    """A gymnax 1.x env whose `step` returns gymnax's old `(obs, state, reward, done, info)`."""

    def __init__(self, env):
        self.env = env

    def __getattr__(self, name):  # only for names not set on self: "env" itself is missing while deep-copied
        if name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, params)
        return obs, state, reward, terminated | truncated, info


def build_purejaxppo(env_id: str, hp: dict[str, Any]):
    """(train(key) -> final params, act(params) -> rejax-style act(obs, rng))."""
    import jax.numpy as jnp

    from purejaxppo import PPOConfig, make_train
    from purejaxppo.core.envs import GymnaxEnv
    from purejaxppo.core.networks import env_action
    from purejaxppo.core.policy_kinds import make_policy_kind

    config = PPOConfig(env=env_id, anneal_lr=False, clip_value=True, **hp)
    train = make_train(config)
    spec = GymnaxEnv(env_id).action_spec
    policy = make_policy_kind(config, spec)

    def act_fn(params):
        def act(obs, rng):
            pi = policy.act(params, jnp.ravel(obs).astype(jnp.float32), None, None).pi
            return env_action(pi.sample(seed=rng), spec)
        return act

    return (lambda key: train(key).params), act_fn


def build_rejax(env_id: str, hp: dict[str, Any]):
    """(train(key) -> final actor params, act(params) -> act(obs, rng)), evaluation off."""
    import gymnax
    import jax.numpy as jnp
    from rejax import PPO

    env, env_params = gymnax.make(env_id)
    algo = PPO.create(
        env=FiveTupleStep(env), env_params=env_params, num_envs=hp["num_envs"], num_steps=hp["num_steps"],
        num_epochs=hp["update_epochs"], num_minibatches=hp["num_minibatches"],
        total_timesteps=hp["total_timesteps"], eval_freq=hp["total_timesteps"], skip_initial_evaluation=True,
        learning_rate=hp["lr"], gamma=hp["gamma"], gae_lambda=hp["gae_lambda"], clip_eps=hp["clip_eps"],
        ent_coef=hp["ent_coef"], vf_coef=hp["vf_coef"], max_grad_norm=hp["max_grad_norm"],
        agent_kwargs=dict(activation=hp["activation"], hidden_layer_sizes=hp["hidden_sizes"]))
    algo = algo.replace(eval_callback=lambda algo, ts, rng: jnp.zeros(()))

    def train(key):
        ts, _ = algo.train(key)
        return ts.actor_ts.params

    def act_fn(params):
        return lambda obs, rng: jnp.squeeze(algo.actor.apply(params, obs[None], rng, method="act"))

    return train, act_fn


def build_purejaxrl(env_id: str, hp: dict[str, Any]):
    """PureJaxRL's `purejaxrl/ppo.py` from the checkout in $PUREJAXRL_DIR, as its file defines it (not a package,
    so not installed, and not copied here): (train(key) -> final params, act(params) -> act(obs, rng)). Its
    wrappers unpack gymnax 0.x's 5-value step, so its `gymnax.make` gives `FiveTupleStep` envs."""
    import gymnax
    import jax.numpy as jnp

    sys.path.insert(0, os.path.join(os.environ["PUREJAXRL_DIR"], "purejaxrl"))  # ppo.py imports its wrappers so
    import ppo

    config = {"LR": hp["lr"], "NUM_ENVS": hp["num_envs"], "NUM_STEPS": hp["num_steps"],
              "TOTAL_TIMESTEPS": hp["total_timesteps"], "UPDATE_EPOCHS": hp["update_epochs"],
              "NUM_MINIBATCHES": hp["num_minibatches"], "GAMMA": hp["gamma"], "GAE_LAMBDA": hp["gae_lambda"],
              "CLIP_EPS": hp["clip_eps"], "ENT_COEF": hp["ent_coef"], "VF_COEF": hp["vf_coef"],
              "MAX_GRAD_NORM": hp["max_grad_norm"], "ACTIVATION": hp["activation"], "ENV_NAME": env_id,
              "ANNEAL_LR": False, "DEBUG": False}
    make = gymnax.make
    gymnax.make = lambda env_id, **kw: (lambda env, params: (FiveTupleStep(env), params))(*make(env_id, **kw))
    try:  # make_train makes its env
        train = ppo.make_train(config)
    finally:
        gymnax.make = make
    env, env_params = make(env_id)
    network = ppo.ActorCritic(env.action_space(env_params).n, activation=hp["activation"])

    def act_fn(params):
        return lambda obs, rng: network.apply(params, jnp.ravel(obs))[0].sample(seed=rng)

    return (lambda key: train(key)["runner_state"][0].params), act_fn


BUILDERS = {"purejaxppo": build_purejaxppo, "rejax": build_rejax, "purejaxrl": build_purejaxrl}


def measure(implementation: str, name: str, seeds: int | None = None) -> dict[str, float]:
    """One measurement, in this process: compile, run once, evaluate; `seeds` runs instead of the workload's."""
    import jax

    from purejaxppo.scale.compilation import compiler_options, use_cpu_cores

    ours = implementation == "purejaxppo"
    if ours:
        use_cpu_cores()  # before gymnax's import computes
    import gymnax
    from rejax.evaluate import evaluate

    from purejaxppo.scale.parallel import runs_sharding

    workload = dict(WORKLOADS[name], seeds=seeds or WORKLOADS[name]["seeds"])
    hp = hyperparameters(workload)
    train, act_fn = BUILDERS[implementation](workload["env"], hp)
    keys = jax.random.split(jax.random.PRNGKey(0), workload["seeds"])
    options = compiler_options() if ours else {}
    if workload["seeds"] == 1:
        program = jax.jit(train, compiler_options=options)
    elif ours:  # as purejaxppo's Sweep does: the seeds split over a CPU's cores
        program = jax.jit(jax.vmap(train), in_shardings=runs_sharding(None, num_runs=workload["seeds"]),
                          compiler_options=options)
    else:
        program = jax.jit(jax.vmap(train))
    args = keys if workload["seeds"] > 1 else keys[0]

    start = time.perf_counter()
    compiled = program.lower(args).compile()
    compile_seconds = time.perf_counter() - start
    memory = compiled.memory_analysis()
    num_devices = len(jax.tree.leaves(compiled.input_shardings)[0].device_set)
    start = time.perf_counter()
    params = jax.block_until_ready(compiled(args))
    run_seconds = time.perf_counter() - start

    env, env_params = gymnax.make(workload["env"])
    env = FiveTupleStep(env)
    returns = []
    for seed in range(workload["seeds"]):
        seed_params = jax.tree.map(lambda x: x[seed], params) if workload["seeds"] > 1 else params
        _, episode_returns = evaluate(act_fn(seed_params), jax.random.PRNGKey(1000 + seed), env, env_params,
                                      EVAL_EPISODES, env_params.max_steps_in_episode)
        returns.append(float(np.mean(episode_returns)))
    steps = hp["total_timesteps"] * workload["seeds"]
    return dict(compile_s=compile_seconds, run_s=run_seconds, steps_per_s=steps / run_seconds,
                xla_mib=(memory.argument_size_in_bytes + memory.output_size_in_bytes
                         + memory.temp_size_in_bytes) / 2**20,
                rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10,
                final_return=float(np.mean(returns)), final_return_per_seed=returns, devices=num_devices)


def in_subprocess(implementation: str, name: str, seeds: int | None = None) -> dict[str, float]:
    env = {**os.environ, "JAX_ENABLE_COMPILATION_CACHE": "false"}
    seeds_arg = ["--worker-seeds", str(seeds)] if seeds else []
    proc = subprocess.run([sys.executable, __file__, "--worker", implementation, name, *seeds_arg],
                          capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{implementation} on {name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


FIGURES = [("compile_s", "compile s", "{:.1f}"), ("run_s", "run s", "{:.1f}"),
           ("steps_per_s", "env steps/s", "{:,.0f}"), ("xla_mib", "XLA memory MiB", "{:.1f}"),
           ("rss_mib", "peak RSS MiB", "{:,.0f}"), ("final_return", "final return", "{:.1f}")]


def table(name: str, results: dict[str, list[dict[str, float]]], outcome: dict[str, dict] | None) -> str:
    w, impls = WORKLOADS[name], list(results)
    peers = impls[1:]
    lines = [f"**{name}**: {w['env']}, {w['seeds']} seed(s), {w['num_envs']} envs x {w['num_steps']} steps, "
             f"{w['update_epochs']} epochs x {w['num_minibatches']} minibatches, {w['total_timesteps']:,} steps "
             f"per seed; median (range) of {len(results['rejax'])}; devices: "
             + ", ".join(f"{impl} {results[impl][0]['devices']}" for impl in impls), "",
             "| figure | " + " | ".join(impls) + " | " + " | ".join(f"purejaxppo / {p}" for p in peers) + " |",
             "|---|" + "---:|" * (len(impls) + len(peers))]
    for key, label, fmt in FIGURES:
        medians = {impl: statistics.median(r[key] for r in results[impl]) for impl in impls}
        cells = [f"{fmt.format(medians[impl])} ({fmt.format(min(r[key] for r in results[impl]))}-"
                 f"{fmt.format(max(r[key] for r in results[impl]))})" for impl in impls]
        ratios = [f"{medians['purejaxppo'] / medians[p]:.2f}" if medians[p] and key != "final_return" else ""
                  for p in peers]
        lines.append(f"| {label} | " + " | ".join(cells + ratios) + " |")
    if outcome:
        cells = []
        for impl in impls:
            mean, low, high = mean_ci95(np.asarray(outcome[impl]["final_return_per_seed"]))
            worst = min(outcome[impl]["final_return_per_seed"])
            cells.append(f"{mean:.1f} [{low:.1f}, {high:.1f}], worst {worst:.1f}")
        seeds = len(outcome["rejax"]["final_return_per_seed"])
        lines.append(f"| final return, seeds 0-{seeds - 1} (95% CI) | " + " | ".join(cells + [""] * len(peers)) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--return-seeds", type=int, default=8,
                        help="seeds of the learning-outcome run, after the timings (0: none)")
    parser.add_argument("--purejaxrl", metavar="DIR",
                        help="a checkout of PureJaxRL (github.com/luchris429/purejaxrl): adds its ppo.py as a third "
                             "column")
    parser.add_argument("--worker", nargs=2, metavar=("IMPLEMENTATION", "WORKLOAD"), help=argparse.SUPPRESS)
    parser.add_argument("--worker-seeds", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(*args.worker, seeds=args.worker_seeds)))
        return
    import rejax  # noqa: F401  (fails here, before any run, when the bench extra is missing)

    implementations = IMPLEMENTATIONS
    if args.purejaxrl:
        if not os.path.isfile(os.path.join(args.purejaxrl, "purejaxrl", "ppo.py")):
            parser.error(f"--purejaxrl {args.purejaxrl}: no purejaxrl/ppo.py there; give a checkout of "
                         "github.com/luchris429/purejaxrl")
        os.environ["PUREJAXRL_DIR"] = os.path.abspath(args.purejaxrl)
        implementations += ("purejaxrl",)
    from machine import header

    print(header() + "\n", flush=True)
    for name in args.workloads:
        continuous = name == "pendulum"
        impls = tuple(i for i in implementations if not (continuous and i == "purejaxrl"))
        results: dict[str, list[dict[str, float]]] = {impl: [] for impl in impls}
        for repeat in range(args.repeats):
            order = impls if repeat % 2 == 0 else impls[::-1]
            for impl in order:
                results[impl].append(in_subprocess(impl, name))
                print(f"  {name} #{repeat + 1} {impl}: " + ", ".join(
                    f"{label} {fmt.format(results[impl][-1][key])}" for key, label, fmt in FIGURES),
                    file=sys.stderr, flush=True)
        # One seed's return says little about a learning outcome: both implementations also train
        # --return-seeds seeds in one program (vmapped, as the multi-seed workload), compared by mean and CI.
        outcome = {impl: in_subprocess(impl, name, args.return_seeds) for impl in impls
                   } if args.return_seeds else None
        print(table(name, results, outcome) + "\n", flush=True)


if __name__ == "__main__":
    main()
