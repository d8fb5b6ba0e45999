"""Loading a trained policy from a run directory and evaluating it: `load_policy`, `evaluate` and the CLI
`python -m purejaxppo.evaluate`.

The runs are trained once, through the training command called in this process (`conftest.run_main`): tiny
runs (`TINY`) of a weak CartPole policy (short episodes: a cheap animation),
Pendulum (continuous actions, normalized observations) and DeepSea (no renderer in gymnax's visualizer); the
CartPole run of two seeds is the session's shared one (`conftest.two_seeds`). That a solved policy scores as one
is a learning check (`make test-learning`), on the session's solved run (`conftest.solved_cartpole`).
"""

import dataclasses
import json
import re
import shutil
import sys

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from conftest import run_cli, run_main

from purejaxppo.cli.evaluate import main
from purejaxppo.core.config import PPOConfig
from purejaxppo.core.envs import GymnaxEnv
from purejaxppo.core.policy_kinds import make_policy_kind
from purejaxppo.io.checkpoint import Checkpointer
from purejaxppo.io.evaluation import RENDERABLE_ENVS, check_renderable, episode_states, evaluate
from purejaxppo.io.policy import load_policy
from purejaxppo.scale.plan import make_plan
from purejaxppo.scale.program import state_template
from purejaxppo.scale.sweep import Sweep

TINY = ["--num-envs", "4", "--num-steps", "16", "--num-minibatches", "2", "--total-timesteps", "1024", "--quiet"]
"""The smallest runs that load as policies: 16 updates of 4 envs x 16 steps."""
RUNS = {
    "weak": ["--env", "CartPole-v1", "--lr", "1e-6"],  # next to untrained: episodes of about 10 steps to draw
    "pendulum": ["--env", "Pendulum-v1", "--normalize-obs"],
    "deepsea": ["--env", "DeepSea-bsuite"],
}
LINE = re.compile(r"^(?P<env>\S+), run (?P<run>\d+) \(seed (?P<seed>\d+)\): "
                  r"mean return (?P<mean>-?[\d.]+) ± (?P<std>[\d.]+) \(std\), "
                  r"95% CI \[(?P<low>-?[\d.]+), (?P<high>-?[\d.]+)\] over (?P<n>\d+) episodes$")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, two_seeds):
    root = tmp_path_factory.mktemp("runs")
    for name, args in RUNS.items():
        result = run_main(*args, *TINY, "--out", str(root / name))
        assert result.returncode == 0, f"{name}: {result.stderr}"
    return {"cartpole": two_seeds, **{name: root / name for name in RUNS}}


def _checkpointed_state(run_dir):
    """The latest checkpoint's state of every run, restored without purejaxppo.io.policy."""
    meta = Checkpointer(run_dir).meta()
    plan = make_plan(PPOConfig(**meta["config"]), len(meta["seeds"]), meta["seeds"][0], meta["sweep"])
    state, _ = Checkpointer(run_dir).restore(state_template(plan))
    return state.state


def _checkpoint_params(run_dir, run):
    """Run `run`'s params, restored from the checkpoint without purejaxppo.io.policy."""
    return jax.tree.map(lambda x: x[run], _checkpointed_state(run_dir).params)


def _observations(env_id, n, seed=0):
    """`n` observations visited by a random policy: flat float32 [n, obs_size]."""
    env = GymnaxEnv(env_id)

    def step(carry, key):
        obs, state = carry
        key_action, key_step = jax.random.split(key)
        action = env.env.action_space(env.params).sample(key_action)
        obs, state, *_ = env.step(key_step, state, action)
        return (obs, state), obs

    return jax.jit(lambda key: jax.lax.scan(step, env.reset(key), jax.random.split(key, n))[1])(
        jax.random.key(seed))


@pytest.mark.slow
def test_a_trained_cartpole_policy_loads_with_its_run_and_config_and_evaluates_reproducibly(runs):
    policy = load_policy(runs["cartpole"])
    summary = json.loads((runs["cartpole"] / "summary.json").read_text())
    saved = json.loads((runs["cartpole"] / "config.json").read_text())
    assert policy.env_id == "CartPole-v1" and policy.run == 0 and policy.seed == 0
    assert summary["configs"][0]["config"] == 0
    assert policy.config == PPOConfig(**{k: v for k, v in saved.items() if k not in ("seeds", "sweep")})
    returns = evaluate(policy, episodes=100)
    assert returns.shape == (100,) and np.all(np.isfinite(returns))
    np.testing.assert_array_equal(evaluate(policy, episodes=100), returns)  # seeded: reproducible


@pytest.mark.slow
@pytest.mark.learning
def test_the_solved_cartpole_policy_scores_at_least_475_and_the_command_says_so(solved_cartpole):
    assert evaluate(load_policy(solved_cartpole), episodes=100).mean() >= 475
    proc = run_main(str(solved_cartpole), "--episodes", "100", module="purejaxppo.cli.evaluate")
    assert proc.returncode == 0, proc.stderr
    m = LINE.match(proc.stdout.splitlines()[0])
    assert m and float(m["mean"]) >= 475, proc.stdout


@pytest.mark.slow
def test_policy_is_jittable_and_takes_single_batched_and_raw_observations(runs):
    policy = load_policy(runs["cartpole"])
    obs = _observations("CartPole-v1", 64)
    actions = jax.jit(policy)(obs)
    assert actions.shape == (64,) and actions.dtype == jnp.int32
    assert set(np.unique(actions)) <= {0, 1}
    assert jax.jit(policy)(obs[0]).shape == () and int(jax.jit(policy)(obs[0])) == int(actions[0])
    np.testing.assert_array_equal(jax.vmap(policy)(obs), actions)
    np.testing.assert_array_equal(policy(obs.reshape(8, 8, 4)), actions.reshape(8, 8))
    keys = jax.random.split(jax.random.key(0), 64)
    assert jax.jit(jax.vmap(policy))(obs, keys).shape == (64,)
    with pytest.raises(ValueError, match="does not fit CartPole-v1"):
        policy(jnp.zeros((3, 5)))


@pytest.mark.slow
@pytest.mark.parametrize("run", [0, 1])
def test_deterministic_policy_is_the_argmax_of_the_checkpointed_network(runs, run):
    policy = load_policy(runs["cartpole"], run)
    assert policy.run == run and policy.seed == run
    params = _checkpoint_params(runs["cartpole"], run)
    network = make_policy_kind(policy.config, GymnaxEnv("CartPole-v1").action_spec).network
    obs = _observations("CartPole-v1", 256, seed=run)
    pi, _ = network.apply(params, obs)
    np.testing.assert_array_equal(policy(obs), np.argmax(np.asarray(pi.logits), axis=-1))
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), policy.params, params)


@pytest.mark.slow
def test_stochastic_policy_samples_from_its_distribution(runs):
    policy = load_policy(runs["cartpole"])
    obs = _observations("CartPole-v1", 512)
    probs = np.asarray(policy.distribution(obs).probs)[:, 1]
    uncertain = obs[np.argmin(np.abs(probs - 0.5))]  # the visited state where the policy hesitates most
    p = float(np.asarray(policy.distribution(uncertain).probs)[1])
    assert 0.05 < p < 0.95
    samples = jax.vmap(policy, (None, 0))(uncertain, jax.random.split(jax.random.key(1), 4000))
    assert set(np.unique(samples)) == {0, 1}
    assert abs(float(np.mean(samples)) - p) < 0.04
    # one key for a batch: an independent draw per observation, reproducible for the key
    batch = jnp.broadcast_to(uncertain, (4000, 4))
    np.testing.assert_array_equal(policy(batch, jax.random.key(2)), policy(batch, jax.random.key(2)))
    assert set(np.unique(policy(batch, jax.random.key(2)))) == {0, 1}


@pytest.mark.slow
def test_continuous_policy_actions_lie_within_the_bounds(runs):
    policy = load_policy(runs["pendulum"])
    assert policy.env_id == "Pendulum-v1" and not policy.action_spec.discrete
    obs = np.random.default_rng(0).normal(scale=100.0, size=(256, 3)).astype(np.float32)  # far out: clipped
    mean = policy(obs)
    assert mean.shape == (256, 1) and mean.dtype == jnp.float32
    assert np.all(mean >= -2.0) and np.all(mean <= 2.0)
    loc = np.asarray(policy.distribution(obs).mean())
    np.testing.assert_allclose(mean, np.clip(loc, -2.0, 2.0))
    sampled = jax.jit(policy)(obs, jax.random.key(0))
    assert np.all(sampled >= -2.0) and np.all(sampled <= 2.0) and not np.array_equal(sampled, mean)
    returns = evaluate(policy, episodes=4)
    assert returns.shape == (4,) and np.all(np.isfinite(returns)) and np.all(returns < 0)


@pytest.mark.slow
def test_loaded_policy_normalizes_with_the_checkpointed_statistics(runs):
    policy = load_policy(runs["pendulum"])
    saved = _checkpointed_state(runs["pendulum"]).norm.obs
    np.testing.assert_array_equal(policy.obs_stats.mean, saved.mean[0])
    np.testing.assert_array_equal(policy.obs_stats.var, saved.var[0])
    assert float(policy.obs_stats.count) >= 1024  # every training observation was merged in
    obs = _observations("Pendulum-v1", 8)
    pi, _ = make_policy_kind(policy.config, policy.action_spec).network.apply(
        policy.params, (obs - saved.mean[0]) / np.sqrt(saved.var[0] + 1e-8))
    np.testing.assert_allclose(policy(obs), np.clip(pi.mean(), -2.0, 2.0), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_cli_prints_the_summary_line(runs):
    proc = run_main(str(runs["cartpole"]), "--episodes", "100", module="purejaxppo.cli.evaluate")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout
    m = LINE.match(lines[0])
    assert m, lines[0]
    assert (m["env"], m["run"], m["seed"], m["n"]) == ("CartPole-v1", "0", "0", "100")
    assert float(m["low"]) <= float(m["mean"]) <= float(m["high"])
    assert "error" not in proc.stderr


@pytest.mark.slow
def test_cli_renders_an_episode_as_a_gif(runs, tmp_path, capsys):
    gif = tmp_path / "episode.gif"
    status = main([str(runs["weak"]), "--episodes", "5", "--render", str(gif)])
    captured = capsys.readouterr()
    assert status == 0, captured.err  # CartPole is drawn by gymnasium with pygame: it must be installed
    out = captured.out.splitlines()
    assert LINE.match(out[0]), out
    steps, ret = re.match(r"wrote .*: episode 0, (\d+) steps, return (-?[\d.]+)$", out[-1]).groups()
    data = gif.read_bytes()
    assert data[:6] in (b"GIF87a", b"GIF89a") and len(data) > 1000
    from PIL import Image

    with Image.open(gif) as image:
        assert image.n_frames == int(steps)
    # the animated episode is episode 0 of the evaluation, and CartPole pays 1 per step
    policy = load_policy(runs["weak"])
    assert float(ret) == evaluate(policy, episodes=5)[0] == int(steps)
    states, rewards = episode_states(policy)
    assert len(states) == int(steps) and rewards.sum() == float(ret)


@pytest.mark.slow
def test_cli_refuses_to_render_an_env_without_renderer_before_evaluating(runs, tmp_path, capsys):
    assert "DeepSea-bsuite" not in RENDERABLE_ENVS
    gif = tmp_path / "episode.gif"
    assert main([str(runs["deepsea"]), "--render", str(gif)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing evaluated
    assert captured.err.startswith("error: cannot render DeepSea-bsuite: --render draws with gymnax's visualizer, "
                                   "which has no renderer for DeepSea-bsuite; supported: ")
    assert captured.err.count("\n") == 1 and "CartPole-v1" in captured.err
    assert not gif.exists()


def test_render_check_names_a_missing_drawing_dependency(monkeypatch, tmp_path):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pygame" else find_spec(name, *a))
    with pytest.raises(ValueError, match=r"^rendering CartPole-v1 needs pygame, which is not installed: "
                                         r"pip install -e '\.\[render\]'$"):
        check_renderable("CartPole-v1", tmp_path / "episode.gif")
    check_renderable("Catch-bsuite", tmp_path / "episode.gif")  # drawn with matplotlib alone
    with pytest.raises(ValueError, match="directory .* does not exist"):
        check_renderable("Catch-bsuite", tmp_path / "nowhere" / "episode.gif")


def _corrupt(runs, tmp_path, which):
    """A copy of the weak run with one checkpoint file damaged."""
    run_dir = tmp_path / "run"
    shutil.copytree(runs["weak"], run_dir)
    (step,) = (run_dir / "checkpoints").iterdir()
    if which == "metadata":  # the state's tree metadata, overwritten with garbage
        (step / "state" / "_METADATA").write_bytes(b"\x00garbage" * 10)
    else:  # the root manifest of the arrays' database, truncated
        manifest = step / "state" / "manifest.ocdbt"
        manifest.write_bytes(manifest.read_bytes()[:40])
    return run_dir


@pytest.mark.parametrize("case, message", [
    ("missing", "is not a directory"),
    ("not a run", "is not a purejaxppo run"),
    ("no checkpoints", "no complete checkpoint"),
    ("corrupt metadata", "is corrupt"),
    ("corrupt manifest", "is corrupt"),
])
@pytest.mark.slow
def test_bad_run_dirs_raise_valueerror_and_the_cli_exits_2(runs, tmp_path, capsys, monkeypatch, case, message):
    if case == "missing":
        run_dir = tmp_path / "nowhere"
    elif case == "not a run":
        run_dir = tmp_path
    elif case == "no checkpoints":
        run_dir = tmp_path / "run"
        shutil.copytree(runs["weak"], run_dir, ignore=shutil.ignore_patterns("checkpoints"))
    else:
        run_dir = _corrupt(runs, tmp_path, case.split()[1])
    reports = []  # what orbax would leave if it read a damaged file: the digests keep it from trying
    monkeypatch.setattr(sys, "unraisablehook", reports.append)
    restores = []  # so it never reads a file of the checkpoint: no read can be left in flight to report later
    restore = ocp.CheckpointManager.restore
    monkeypatch.setattr(ocp.CheckpointManager, "restore",
                        lambda self, *a, **k: restores.append(a) or restore(self, *a, **k))
    with pytest.raises(ValueError, match=message) as error:
        load_policy(run_dir)
    assert "\n" not in str(error.value)
    assert main([str(run_dir), "--episodes", "3"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and message in captured.err and captured.err.count("\n") == 1
    assert restores == [] and reports == []


@pytest.mark.slow
def test_cli_corrupt_checkpoint_prints_one_line_in_a_real_process(runs, tmp_path):
    run_dir = _corrupt(runs, tmp_path, "manifest")
    proc = run_cli(str(run_dir), module="purejaxppo.evaluate")
    assert proc.returncode == 2 and proc.stdout == ""
    errors = [line for line in proc.stderr.splitlines() if "Warning" not in line and "warn(" not in line]
    assert len(errors) == 1 and errors[0].startswith("error: checkpoint ") and "is corrupt" in errors[0], proc.stderr


@pytest.mark.slow
def test_run_out_of_range(runs, capsys):
    for run in (2, -1):
        with pytest.raises(ValueError, match=f"run {run} is out of range: .* has 2 runs, 0 to 1"):
            load_policy(runs["cartpole"], run)
    assert main([str(runs["cartpole"]), "--run", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: run 5 is out of range") and err.count("\n") == 1


def test_swept_run_loads_the_configuration_of_its_index(tmp_path):
    """A sweep's runs are configuration-major: run = c * num_seeds + s, with config c's hyperparameters."""
    run_dir = tmp_path / "sweep"
    config = PPOConfig(env="CartPole-v1", total_timesteps=512)
    job = Sweep(config, 2, 5, lr=[1e-3, 1e-4])
    state = job.to_host(job.init())  # zeros: give each run's params its own values instead
    params = jax.tree.map(lambda x: np.arange(x.size, dtype=x.dtype).reshape(x.shape) + 0.5, state.state.params)
    state = state.replace(state=state.state.replace(params=params))
    Checkpointer(run_dir).save(state, state.done, {"config": config.to_dict(), "seeds": [5, 6],
                                                   "sweep": {"lr": [1e-3, 1e-4]}, "num_updates": 1})
    (run_dir / "config.json").write_text("{}")
    (run_dir / "summary.json").write_text(json.dumps({"configs": [{"config": 1}, {"config": 0}]}))
    best = load_policy(run_dir)
    assert (best.run, best.seed, best.hyperparams) == (2, 5, {"lr": 1e-4}) and best.config.lr == 1e-4
    last = load_policy(run_dir, 3)
    assert (last.seed, last.config) == (6, dataclasses.replace(config, lr=1e-4))
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b[3]), last.params, state.state.params)
