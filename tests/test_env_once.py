"""A run makes its env once and passes it down: `make_train`, a sweep (its checks, its program's traces) and the
tuner (every group, rung and confirmation) each make it once, and take an env already made as it is."""

import jax
import pytest

import purejaxppo.core.envs as envs
from purejaxppo.core.config import PPOConfig
from purejaxppo.core.envs import make_env
from purejaxppo.core.train import make_train, make_trainer
from purejaxppo.scale.sweep import Sweep
from purejaxppo.scale.tune import tune

TINY = PPOConfig(env="CartPole-v1", num_envs=4, num_steps=8, total_timesteps=4 * 8 * 3, num_minibatches=2,
                 update_epochs=1)


@pytest.fixture
def made(monkeypatch):
    """The env ids made while a test runs, one entry each time a gymnax env is constructed."""
    ids = []

    class Counted(envs.GymnaxEnv):
        def __init__(self, env_id, **kwargs):
            ids.append(env_id)
            super().__init__(env_id, **kwargs)

    monkeypatch.setattr(envs, "GymnaxEnv", Counted)
    return ids


def test_make_train_makes_its_env_once_however_often_it_is_traced(made):
    train = make_train(TINY)
    jax.eval_shape(train, jax.random.key(0))
    jax.eval_shape(jax.vmap(train), jax.random.split(jax.random.key(0), 2))
    assert made == ["CartPole-v1"]


def test_an_env_already_made_is_trained_as_it_is(made):
    env = make_env("CartPole-v1")
    assert made == ["CartPole-v1"]
    jax.eval_shape(make_train(TINY, env=env), jax.random.key(0))
    assert make_trainer(TINY, env=env) and made == ["CartPole-v1"]


@pytest.mark.slow
def test_a_sweep_makes_its_env_once_for_its_checks_and_its_program(made):
    job = Sweep(TINY, num_seeds=2, lr=[1e-3, 3e-4])
    job.compile()
    job.advance(job.init(), 1)
    assert made == ["CartPole-v1"] and job.env.env_id == "CartPole-v1"


@pytest.mark.slow
def test_the_tuner_makes_its_env_once_for_every_rung_and_confirmation(made):
    # through the session's compile cache, as the command's: the confirmation is the second rung's program
    result = tune(TINY, num_trials=3, num_seeds=1, rungs=2, eta=3, confirm_top=1, confirm_seeds=1)
    assert result.compiles >= 3  # two rungs and a confirmation, one program each
    assert made == ["CartPole-v1"]
