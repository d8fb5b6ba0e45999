"""A suite is one adapter module and one row of `core.env_ids.SUITES`: a toy suite planted that way (its module in
`sys.modules`, its row added to the table) is known everywhere a suite is, with nothing else edited: its ids,
their unknown-id error, its defaults, its episode limit under the common name, the command's help, the program
cache's key, and training."""

import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purejaxppo import PPOConfig, make_train
from purejaxppo.core import env_ids
from purejaxppo.core.defaults import defaults_for
from purejaxppo.core.envs import check_env_id, make_env
from purejaxppo.core.envs.wrappers import Stepped

TOY = env_ids.Suite("toy:", package="numpy", extra="toy", module="toy", adapter="LineEnv", example="toy:Line-v0",
                    defaults=dict(num_envs=8, num_steps=16, num_minibatches=2), libraries=("toy-physics",),
                    max_steps_field="max_steps")


class LineEnv:
    """Walk right along a line of `length` cells to its end (reward 1): the whole adapter a suite needs."""

    def __init__(self, env_id, length=5, max_steps=20):
        self.env_id, self.length, self.time_limit = env_id, length, max_steps
        self.action_space = ("discrete", 2)

    def reset(self, key):
        return jax.nn.one_hot(0, self.length), jnp.int32(0)

    def step(self, key, state, action):
        position = jnp.clip(state + 2 * action - 1, 0, self.length - 1)
        done = position == self.length - 1
        return Stepped(jax.nn.one_hot(position, self.length), position, done.astype(jnp.float32), done,
                       jnp.bool_(False))


@pytest.fixture
def toy_suite(monkeypatch):
    module = types.ModuleType("purejaxppo.core.envs.suites.toy")
    module.looked_up = 0

    def names():
        module.looked_up += 1
        return ["Line-v0", "Ring-v0"]

    module.names = names
    module.LineEnv = LineEnv
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(env_ids, "SUITES", (*env_ids.SUITES, TOY))
    return module


@pytest.mark.slow
def test_a_suite_is_one_module_and_one_row(toy_suite):
    env = make_env("toy:Line-v0", length=4, max_steps_in_episode=7)  # the common name, renamed by the row
    assert toy_suite.looked_up == 1  # its id checked once, by what made it
    assert env.observation_size == 4 and env.action_spec.num_actions == 2
    assert env.params.max_steps_in_episode == 7  # its TimeLimit, from the suite's own max_steps
    with pytest.raises(ValueError, match=r"has no env 'Lin-v0'; did you mean toy:Line-v0"):
        check_env_id("toy:Lin-v0")
    assert not env_ids.is_factory_id("toy:Line") and "toy:" in env_ids.named_prefixes()
    assert defaults_for("toy:Line-v0") == dict(TOY.defaults)

    from purejaxppo.cli.args import build_parser
    from purejaxppo.scale.program_cache import _libraries

    assert "toy:" in build_parser().format_help()
    assert "toy-physics" in _libraries() and "numpy" in _libraries()

    config = PPOConfig.for_env("toy:Line-v0", total_timesteps=8 * 16 * 20, env_kwargs={"length": 4})
    out = jax.jit(make_train(config))(jax.random.key(0))
    assert np.nanmean(np.asarray(out.metrics["episode_return"])[-5:]) > 0.9  # it walks to the end
