"""Your own env: an object given to make_train, a "module:factory" id from the CLI, env_kwargs, gymnax 0.x's
five-value step, the Env protocol, and the one traced step that checks an env before anything compiles."""

import json
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import pytest
from conftest import run_main

from purejaxppo import PPOConfig, make_train
from purejaxppo.core.envs import ActionSpec, make_env, register_env
from purejaxppo.examples.corridor import Corridor
from purejaxppo.scale.plan import make_plan
from purejaxppo.scale.program import SweepProgram, place_runs

FACTORY = "purejaxppo.examples.corridor:make"
SHORT = dict(total_timesteps=20_480, num_envs=8, num_steps=32, lr=3e-3)


@pytest.mark.slow
def test_an_env_object_given_to_make_train_learns():
    """The corridor's best return is 1 - 0.01 * (length - 2): walk right, one step per cell."""
    config = PPOConfig(env="corridor-5", **SHORT)
    out = jax.jit(make_train(config, env=Corridor(5)))(jax.random.key(0))
    assert float(jnp.nanmean(out.metrics["episode_return"][-5:])) == pytest.approx(0.97, abs=0.02)


def test_factory_id_with_kwargs_for_the_constructor_and_the_params():
    env = make_env(FACTORY, length=6, max_steps_in_episode=9)
    assert env.observation_size == 6 and env.params.max_steps_in_episode == 9
    obs, state = env.reset(jax.random.key(0))
    for t in range(9):  # always left: the time limit ends the episode, as a truncation
        obs, state, reward, terminated, truncated, info = env.step(jax.random.key(t), state, jnp.int32(0))
    assert bool(truncated) and not bool(terminated) and int(info["episode_length"]) == 9


def test_an_unknown_env_kwarg_names_the_valid_ones():
    with pytest.raises(ValueError, match="has no parameter 'width'; valid names: length, max_steps_in_episode"):
        make_env(FACTORY, width=3)
    with pytest.raises(ValueError, match="valid names: .*max_steps_in_episode"):
        make_env("CartPole-v1", max_steps=3)


def test_a_factory_that_cannot_be_imported_or_found():
    with pytest.raises(ValueError, match="cannot import no_such_package"):
        make_env("no_such_package.envs:make")
    with pytest.raises(ValueError, match="has no function nope"):
        make_env("purejaxppo.examples.corridor:nope")


class FiveValueCorridor(Corridor):
    """gymnax 0.x's step: (obs, state, reward, done, info), the time limit folded into done."""

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = super().step(key, state, action, params)
        return obs, state, reward, terminated | truncated, {}


def test_a_gymnax_0x_env_is_adapted_with_a_warning():
    with pytest.warns(UserWarning, match="every episode end is taken as a termination"):
        env = make_env(FiveValueCorridor(4))
    obs, state = env.reset(jax.random.key(0))
    ends = []
    for t in range(50):  # left forever: the 50-step limit ends it, reported as a termination
        obs, state, reward, terminated, truncated, info = env.step(jax.random.key(t), state, jnp.int32(0))
        ends.append((bool(terminated), bool(truncated)))
    assert ends[-1] == (True, False) and ends[:-1] == [(False, False)] * 49


class FourValueCorridor(Corridor):
    def step(self, key, state, action, params=None):
        return super().step(key, state, action, params)[:4]


class NoFinalObservationCorridor(Corridor):
    def step(self, key, state, action, params=None):
        return (*super().step(key, state, action, params)[:5], {})


@pytest.mark.parametrize("env, message", [
    (FourValueCorridor(4), "step returns tuple of length 4; expected (obs, state, reward, terminated, truncated, "
                           "info) or gymnax 0.x's (obs, state, reward, done, info)"),
    (NoFinalObservationCorridor(4), "step's info has no 'final_observation'"),
])
def test_a_functional_step_that_returns_neither_interface_is_named_by_the_one_check(env, message):
    """The functional adapter reads the step's arity as the env's check traces it: one trace, one line."""
    with pytest.raises(ValueError) as raised:
        make_env(env)
    assert str(raised.value).startswith(f"env '{type(env).__name__}': {message}") and "\n" not in str(raised.value)


class OneStepBandit:
    """The Env protocol itself: one step per episode, action 1 pays 1."""

    env_id = "one-step-bandit"
    action_spec = ActionSpec(discrete=True, num_actions=2)
    observation_shape = (1,)
    observation_size = 1
    params = SimpleNamespace(max_steps_in_episode=1)

    def reset(self, key):
        return jnp.zeros(1, jnp.float32), jnp.int32(0)

    def step(self, key, state, action):
        obs = jnp.zeros(1, jnp.float32)
        return (obs, state, (action == 1).astype(jnp.float32), jnp.bool_(True), jnp.bool_(False),
                {"final_observation": obs})


@pytest.mark.slow
def test_an_env_protocol_object_trains_as_is():
    config = PPOConfig(env="bandit", **SHORT)
    out = jax.jit(make_train(config, env=OneStepBandit()))(jax.random.key(0))
    assert float(jnp.nanmean(out.metrics["episode_return"][-5:])) > 0.95


def _broken(**changes):
    env = OneStepBandit()
    for name, value in changes.items():
        setattr(env, name, value)
    return env


@pytest.mark.parametrize("env, message", [
    (_broken(reset=lambda key: (jnp.zeros(1, jnp.int32), jnp.int32(0))),
     "reset's observation is int32\\[1\\]; the Env protocol needs float32\\[1\\]"),
    (_broken(observation_size=3), "reset's observation is float32\\[1\\]; the Env protocol needs float32\\[3\\]"),
    (_broken(step=lambda key, s, a: (jnp.zeros(1), s, jnp.zeros(2), jnp.bool_(True), jnp.bool_(False),
                                     {"final_observation": jnp.zeros(1)})),
     "step's reward is float32\\[2\\]; the Env protocol needs float32\\[\\]"),
    (_broken(step=lambda key, s, a: (jnp.zeros(1), s, jnp.float32(0), jnp.bool_(True), jnp.bool_(False), {})),
     "info has no 'final_observation'"),
    (_broken(step=lambda key, s, a: (jnp.zeros(1), jnp.float32(0), jnp.float32(0), jnp.bool_(True),
                                     jnp.bool_(False), {"final_observation": jnp.zeros(1)})),
     "step's state differs from reset's"),
    (_broken(params=SimpleNamespace()), "no max_steps_in_episode"),
])
def test_an_env_that_breaks_the_protocol_is_one_line_naming_what(env, message):
    with pytest.raises(ValueError, match=message) as raised:
        make_env(env)
    assert "\n" not in str(raised.value)


def test_an_unsupported_action_space_is_named():
    class Multi(Corridor):
        def action_space(self, params=None):
            from gymnax.environments import spaces
            return spaces.Dict({"a": spaces.Discrete(2)})

    with pytest.raises(ValueError, match="has a Dict action space; purejaxppo supports gymnax's Discrete and Box"):
        make_env(Multi())


def test_register_env_refuses_names_that_mean_other_envs():
    for name in ("CartPole-v1", "brax:ant", "pkg.mod:make", ""):
        with pytest.raises(ValueError, match="cannot register an env"):
            register_env(name, Corridor())


def test_programs_for_a_users_env_stay_out_of_the_program_cache():
    plan = make_plan(PPOConfig(env=FACTORY, **SHORT), 1, 0, {})
    assert not SweepProgram(plan, place_runs(1, jax.devices()[:1])).cacheable
    plan = make_plan(PPOConfig(env="CartPole-v1", **SHORT), 1, 0, {})
    assert SweepProgram(plan, place_runs(1, jax.devices()[:1])).cacheable


@pytest.mark.slow
def test_the_cli_trains_records_and_evaluates_a_factory_env(tmp_path):
    out = tmp_path / "corridor"
    result = run_main("--env", FACTORY, "--env-kwargs", "length=5", "max_steps_in_episode=20", "--total-timesteps",
                      "20480", "--num-envs", "8", "--num-steps", "32", "--lr", "3e-3", "--quiet", "--out", str(out))
    assert result.returncode == 0, result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["env"] == FACTORY and config["env_kwargs"] == {"length": 5, "max_steps_in_episode": 20}
    evaluated = run_main(str(out), "--episodes", "4", "--env", FACTORY, module="purejaxppo.cli.evaluate")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "mean return 0.970 ± 0.000" in evaluated.stdout  # the best return: 3 steps at -0.01, then +1
    bad = run_main("--env", FACTORY, "--env-kwargs", "width=3", "--out", str(tmp_path / "bad"))
    assert bad.returncode == 2 and bad.stderr.strip().endswith("valid names: length, max_steps_in_episode")
    assert not (tmp_path / "bad").exists()


def test_the_docs_show_the_example_env_as_it_is():
    from pathlib import Path

    import purejaxppo.examples.corridor as corridor

    page = (Path(__file__).resolve().parents[1] / "docs" / "your-env.md").read_text()
    assert Path(corridor.__file__).read_text() in page


@pytest.mark.slow
@pytest.mark.end_to_end
def test_the_tuner_searches_a_factory_env_and_its_best_json_rebuilds_it(tmp_path):
    out = tmp_path / "tune"
    result = run_main("--env", FACTORY, "--env-kwargs", "length=5", "--trials", "2", "--num-seeds", "1", "--confirm",
                      "1", "--confirm-seeds", "1", "--total-timesteps", "4096", "--num-envs", "8", "--num-steps", "32",
                      "--quiet", "--out", str(out), module="purejaxppo.cli.tune")
    assert result.returncode == 0, result.stderr
    best = json.loads((out / "best.json").read_text())
    assert best["env"] == FACTORY and best["env_kwargs"] == {"length": 5}
    # best.json names code to import: it runs only with the same id given by the user (test_untrusted_files.py)
    rerun = run_main("--config", str(out / "best.json"), "--env", FACTORY, "--quiet", "--out", str(tmp_path / "rerun"))
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads((tmp_path / "rerun" / "config.json").read_text())["env_kwargs"] == {"length": 5}
