"""A corridor of `length` cells, written as your own env would be (docs/your-env.md): start at the left end, step
left or right; reaching the right end gives +1 and terminates, every other step costs 0.01, and an episode that
lasts `max_steps_in_episode` steps is truncated (gymnax's base class adds the time limit and the auto-reset)."""

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class State(environment.EnvState):
    position: jax.Array


@struct.dataclass
class Params(environment.EnvParams):
    max_steps_in_episode: int = 50


class Corridor(environment.Environment):
    def __init__(self, length: int = 8):
        self.length = length

    @property
    def default_params(self) -> Params:
        return Params()

    def reset_env(self, key, params):
        state = State(time=0, position=jnp.int32(0))
        return self.get_obs(state), state

    def step_env(self, key, state, action, params):
        position = jnp.clip(state.position + 2 * action - 1, 0, self.length - 1)
        state = State(time=state.time + 1, position=position)
        at_end = position == self.length - 1
        return self.get_obs(state), state, jnp.where(at_end, 1.0, -0.01), at_end, {}

    def get_obs(self, state, params=None, key=None):
        return jax.nn.one_hot(state.position, self.length)

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(0.0, 1.0, (self.length,), jnp.float32)


def make(length: int = 8) -> Corridor:
    return Corridor(length)
