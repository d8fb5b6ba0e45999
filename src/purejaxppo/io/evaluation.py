"""Evaluate a trained policy: `evaluate(policy, episodes)` returns the returns of that many episodes, `render`
animates one (the command line is `python -m purejaxppo.evaluate`, in `purejaxppo.cli.evaluate`).

Every episode is its own env, all of them stepped together (vmapped) in one jit-compiled loop until each has
finished its FIRST episode (terminated or truncated at the env's time limit). Episode i depends only on
`(seed, i)`, so the episode `--render` animates (episode 0) is the first one `evaluate` measured.
"""

from __future__ import annotations

import importlib.util
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from purejaxppo.core.envs import EpisodeStatistics, make_env
from purejaxppo.io.policy import Policy
from purejaxppo.io.text import format_return
from purejaxppo.scale.memory import check_fits, evaluation_bytes
from purejaxppo.scale.plan import check_seeds
from purejaxppo.scale.stats import mean_ci95

# The envs gymnax's visualizer (gymnax.visualize.Visualizer, gymnax 1.0.x) draws, and the extra each needs beyond
# gymnax's own dependencies: the classic-control ones are drawn by gymnasium, which draws with pygame.
_CLASSIC_CONTROL = ("CartPole-v1", "Pendulum-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0")
RENDERABLE_ENVS: dict[str, str | None] = {
    **{env_id: "pygame" for env_id in _CLASSIC_CONTROL},  # the render extra
    **{f"{game}-MinAtar": None for game in ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders")},
    "Pong-misc": None, "Catch-bsuite": None, "PointRobot-misc": None, "MetaMaze-misc": None, "FourRooms-misc": None,
}


def _episode_key(seed: int, index: jax.Array) -> jax.Array:
    return jax.random.fold_in(jax.random.key(seed), index)


def _episode_fns(policy: Policy, deterministic: bool):
    """`start(episode_key) -> (obs, state, hidden, key)` for ONE env and the policy's memory `hidden`, and
    `step(obs, state, hidden, key, t) -> (obs, state, hidden, reward, info)` for a batch `[N]` of them (the env's
    `step_batch`: a suite may share its resets across the batch); `t` is the step's index in the episode, so the
    keys of a step depend on (episode, t) alone, and an episode's first ending never on the others."""
    env = make_env(policy.env_id, **env_kwargs_of(policy))

    def start(episode_key):
        key_reset, key_run = jax.random.split(episode_key)
        obs, state = env.reset(key_reset)
        return obs, state, policy.initial_state(), key_run

    def act(obs, hidden, key_run, t):
        key_action, key_env = jax.random.split(jax.random.fold_in(key_run, t))
        hidden, action = policy.step(hidden, obs, t == 0, None if deterministic else key_action)
        return hidden, action, key_env

    def step(obs, state, hidden, keys_run, t):
        hidden, action, keys_env = jax.vmap(act, (0, 0, 0, None))(obs, hidden, keys_run, t)
        obs, state, reward, _, _, info = env.step_batch(keys_env, state, action)
        return obs, state, hidden, reward, info

    return env, start, step


def max_episode_steps(env: EpisodeStatistics) -> int:
    """The env's time limit: every episode has ended (terminated or truncated) after this many steps."""
    return int(env.params.max_steps_in_episode)


def evaluate(policy: Policy, episodes: int = 100, seed: int = 0, deterministic: bool = True) -> np.ndarray:
    """The returns `[episodes]` of `episodes` episodes of `policy`, each in its own env, all stepped at once.

    `deterministic`: the policy's most probable action (discrete) or its mean (continuous); else actions are
    sampled. Each env runs until its first episode ends, for at most the env's `max_steps_in_episode` steps (its
    time limit, so every episode ends); the loop stops as soon as all have ended.
    """
    if episodes < 1:
        raise ValueError(f"episodes={episodes} is invalid: must be at least 1")
    check_seeds(seed, 1)
    env, start, step = _episode_fns(policy, deterministic)
    memory = int(sum(np.prod(np.shape(x)) for x in jax.tree.leaves(policy.initial_state())))
    check_fits(evaluation_bytes(env, episodes, memory), jax.devices()[0], f"evaluating {episodes:,} episodes at once",
               "--episodes")
    max_steps = max_episode_steps(env)

    @jax.jit
    def run(seed):
        obs, state, hidden, keys = jax.vmap(start)(jax.vmap(_episode_key, (None, 0))(seed, jnp.arange(episodes)))
        done = jnp.zeros(episodes, bool)
        returns = jnp.full(episodes, jnp.nan, jnp.float32)  # NaN: not ended (cannot happen within the limit)

        def body(carry):
            t, obs, state, hidden, done, returns = carry
            obs, state, hidden, _, info = step(obs, state, hidden, keys, t)
            ended = info["episode_done"] & ~done  # an env's first episode ended at this step
            returns = jnp.where(ended, info["episode_return"], returns)
            return t + 1, obs, state, hidden, done | info["episode_done"], returns

        carry = (jnp.int32(0), obs, state, hidden, done, returns)
        carry = jax.lax.while_loop(lambda c: (c[0] < max_steps) & ~jnp.all(c[4]), body, carry)
        return carry[5]

    return np.asarray(run(seed), np.float64)


def episode_states(policy: Policy, seed: int = 0, deterministic: bool = True, index: int = 0
                   ) -> tuple[list[Any], np.ndarray]:
    """Episode `index` of `evaluate(policy, ..., seed, deterministic)`, step by step: the raw gymnax env state
    before each step (what gymnax's visualizer draws) and the rewards `[steps]`."""
    env, start, step = _episode_fns(policy, deterministic)

    @jax.jit
    def run(seed):
        # a batch of one episode
        obs, state, hidden, key = jax.tree.map(lambda x: x[None], start(_episode_key(seed, index)))

        def body(carry, t):
            obs, state, hidden = carry
            before = jax.tree.map(lambda x: x[0], state.env_state)  # the raw gymnax state, inside the statistics'
            obs, state, hidden, reward, info = step(obs, state, hidden, key, t)
            return (obs, state, hidden), (before, reward[0], info["episode_done"][0])

        _, out = jax.lax.scan(body, (obs, state, hidden), jnp.arange(max_episode_steps(env)))
        return out

    states, rewards, done = jax.device_get(run(seed))
    steps = int(np.argmax(done)) + 1 if done.any() else len(done)
    return [jax.tree.map(lambda x: x[t], states) for t in range(steps)], np.asarray(rewards[:steps], np.float64)


def env_kwargs_of(policy: Any) -> dict[str, Any]:
    """The env parameters `policy` was trained with (none for a policy-like object without a config)."""
    return dict(getattr(getattr(policy, "config", None), "env_kwargs", ()))


def check_renderable(env_id: str, path: Path) -> None:
    """Raises ValueError (one line) unless `render` can draw `env_id` and write `path`."""
    if env_id not in RENDERABLE_ENVS:
        kind = f"{env_id.split(':')[0]} envs" if ":" in env_id else env_id
        raise ValueError(f"cannot render {env_id}: --render draws with gymnax's visualizer, which has no renderer for "
                         f"{kind}; supported: {', '.join(RENDERABLE_ENVS)} (evaluate without --render)")
    module = RENDERABLE_ENVS[env_id]
    if module and importlib.util.find_spec(module) is None:
        raise ValueError(f"rendering {env_id} needs {module}, which is not installed: "
                         "pip install -e '.[render]'")
    path = Path(path)
    if path.suffix.lower() == ".gif":
        if importlib.util.find_spec("PIL") is None:
            raise ValueError(f"writing {path} needs pillow, which is not installed (pip install pillow)")
    else:
        from matplotlib import animation

        if not animation.writers.is_available("ffmpeg"):
            raise ValueError(f"cannot write {path}: only .gif is supported here (other formats need ffmpeg)")
    if not path.parent.is_dir():
        raise ValueError(f"cannot write {path}: directory {path.parent} does not exist")
    probe = path.with_name(f".{path.name}.{os.getpid()}.probe")
    try:  # now, not after the whole animation is drawn
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
        os.unlink(probe)
    except OSError as e:
        raise ValueError(f"cannot write {path}: {e.strerror or e}; choose a folder you can write") from None


def render(policy: Policy, path: str | Path, seed: int = 0, deterministic: bool = True, index: int = 0
           ) -> tuple[int, float]:
    """Animates episode `index` of `evaluate(policy, ..., seed, deterministic)` with gymnax's visualizer into
    `path` (.gif). Returns the episode's length and return."""
    check_renderable(policy.env_id, Path(path))
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # pygame greets on stdout when imported
    # gymnasium draws each classic-control frame with a fresh pygame.init() and pygame.quit(). No display: the
    # dummy video driver (else SDL prints an error line per frame). No audio, which is never used: opening and
    # closing even a dummy sound device costs milliseconds per frame (benchmarks/README.md), and an unknown driver
    # makes pygame skip it.
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "none")
    import matplotlib

    matplotlib.use("Agg")  # no display
    from gymnax.visualize import Visualizer

    states, rewards = episode_states(policy, seed, deterministic, index)
    env = make_env(policy.env_id, **env_kwargs_of(policy))
    # drawn beside `path` and renamed over it: a failed write leaves the old file, and a link is not written through
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)  # a new file, ours
    os.close(fd)
    drawing = Path(name)
    try:
        Visualizer(env.env.env, env.params, states, np.cumsum(rewards)).animate(str(drawing))
        os.replace(drawing, path)
    finally:
        drawing.unlink(missing_ok=True)
    return len(states), float(rewards.sum())


def summary_line(policy: Policy, returns: np.ndarray, deterministic: bool = True) -> str:
    """`CartPole-v1, run 0 (seed 0): mean return 500.0 ± 0.0 (std), 95% CI [500.0, 500.0] over 100 episodes`."""
    mean, low, high = mean_ci95(returns)
    finite = returns[np.isfinite(returns)]
    std = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    about = [f"{k}={v:g}" for k, v in policy.hyperparams.items()] + [f"seed {policy.seed}"]
    if policy.updates_done < policy.config.num_updates:
        about.append(f"checkpoint at update {policy.updates_done}/{policy.config.num_updates}")
    ci = "n/a" if math.isnan(low) else f"[{format_return(low, mean)}, {format_return(high, mean)}]"
    n = len(returns)
    line = (f"{policy.env_id}, run {policy.run} ({', '.join(about)}): mean return {format_return(mean)} ± "
            f"{format_return(std, mean)} (std), "
            f"95% CI {ci} over {n} episode{'s' if n != 1 else ''}")
    if finite.size < n:
        # Every episode ends within the env's time limit: a return that is not finite is a policy's action or an
        # env's reward that was not (a diverged policy, say), never an episode that did not end.
        line += f" ({n - finite.size} returns not finite: the policy or the env produced NaN or inf)"
    return line + ("" if deterministic else ", stochastic policy")
