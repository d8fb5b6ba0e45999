"""What varies between runs is chosen once, as values: `core/` reads the config's switches only in the functions
that choose a value, and each table of values agrees with the names the config accepts."""

import ast
import dataclasses
from pathlib import Path

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import purejaxppo
from purejaxppo.core import config as config_module
from purejaxppo.core.config import PPOConfig
from purejaxppo.core.losses import LossHyperparams, ppo_loss
from purejaxppo.core.networks import CNNTorso, MLPTorso
from purejaxppo.core.objectives import OBJECTIVES, Clip, KLPenalty, make_objective
from purejaxppo.core.policy_kinds import make_torso
from purejaxppo.core.records import Batch

CORE = Path(purejaxppo.__file__).parent / "core"
CHOOSERS = {"make_components", "make_policy_kind", "make_torso", "make_objective", "make_normalizers",
            "make_schedule", "make_early_stop", "loss_hyperparams"}
"""The functions where a config's choice becomes a value."""
FIELDS = {f.name for f in dataclasses.fields(PPOConfig)}


def branches_on_config(source: str) -> list[str]:
    """`function: config.field` for every if-statement, conditional expression or while loop outside `CHOOSERS`
    whose condition reads a config field (a name `config`, `cfg` or `c`)."""
    found = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        if isinstance(node, (ast.If, ast.IfExp, ast.While)) and function not in CHOOSERS:
            for sub in ast.walk(node.test):
                if (isinstance(sub, ast.Attribute) and sub.attr in FIELDS and isinstance(sub.value, ast.Name)
                        and sub.value.id in ("config", "cfg", "c")):
                    found.append(f"{function}: {sub.value.id}.{sub.attr}")
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(source), "<module>")
    return found


def test_core_branches_on_no_config_field_outside_the_choosers():
    problems = []
    for path in sorted(CORE.rglob("*.py")):
        if path.name in ("config.py", "defaults.py"):  # the config's own validation and properties
            continue
        problems += [f"{path.relative_to(CORE)}: {p}" for p in branches_on_config(path.read_text())]
    assert not problems, problems


def test_the_check_finds_a_planted_branch():
    planted = """
def update_step(state, config):
    scale = 2.0 if config.normalize_reward else 1.0
    if config.objective == "kl_penalty":
        pass
    return scale

def make_objective(config):
    return 1 if config.objective == "clip" else 2
"""
    assert branches_on_config(planted) == ["update_step: config.normalize_reward", "update_step: config.objective"]


def test_the_config_accepts_the_objectives_table_and_nothing_else():
    assert config_module.OBJECTIVES == tuple(OBJECTIVES)
    for name in OBJECTIVES:
        objective = make_objective(PPOConfig(objective=name))
        assert all(callable(getattr(objective, m)) for m in ("init", "record", "policy_loss", "after_update"))
        assert isinstance(objective.metrics, tuple)
    with pytest.raises(ValueError, match="objective='ppo2' is invalid: must be one of clip, kl_penalty"):
        PPOConfig(objective="ppo2")
    assert isinstance(make_objective(PPOConfig(objective="clip")), Clip)
    kl = make_objective(PPOConfig(objective="kl_penalty", kl_target=0.02, kl_beta=3.0))
    assert isinstance(kl, KLPenalty) and kl.kl_target == 0.02 and float(kl.init()) == 3.0


def test_every_torso_the_config_accepts_has_a_value():
    made = {name: make_torso(PPOConfig(torso=name), (10, 10, 4)) for name in config_module.TORSOS}
    assert made == {"mlp": MLPTorso(), "cnn": CNNTorso((10, 10, 4))}


class PlainSurrogate:
    """An objective written as a user would add one: the unclipped surrogate, `-mean(ratio * A)`."""

    metrics = ()

    def init(self):
        return jnp.float32(0.0)

    def record(self, pi):
        return None

    def policy_loss(self, pi, log_prob, batch, advantages, state):
        return -jnp.mean(jnp.exp(log_prob - batch.log_prob) * advantages), {}

    def after_update(self, state, new_policy, batch):
        return state, {}


def test_a_new_objective_is_one_value_the_loss_calls():
    """The loss takes any value with the objective's members: ratios 2 and 0.5 with advantages 1 and 4 give
    -(2 * 1 + 0.5 * 4) / 2 = -2 unclipped, where the clipped surrogate at 0.2 gives -(1.2 + 2) / 2 = -1.6."""
    old = jnp.log(jnp.array([0.25, 0.5]))
    new_logits = jnp.log(jnp.array([[0.5, 0.5], [0.75, 0.25]]))  # action 0 then 1: probabilities 0.5, 0.25
    batch = Batch(obs=jnp.zeros((2, 1)), action=jnp.array([0, 1]), log_prob=old, value=jnp.zeros(2),
                  advantages=jnp.array([1.0, 4.0]), returns=jnp.zeros(2))
    evaluate = lambda params, batch: (distrax.Categorical(logits=params), jnp.zeros(2))
    hp = LossHyperparams(vf_coef=0.0, ent_coef=0.0, clip_eps=0.2, value_clip_eps=None,
                                                advantages=lambda a: a)
    plain, _ = ppo_loss(new_logits, batch, jnp.float32(0.0), evaluate=evaluate, objective=PlainSurrogate(), hp=hp)
    clipped, _ = ppo_loss(new_logits, batch, jnp.float32(0.0), evaluate=evaluate, objective=Clip(0.2), hp=hp)
    np.testing.assert_allclose(float(plain), -2.0, rtol=1e-6)
    np.testing.assert_allclose(float(clipped), -1.6, rtol=1e-6)
    assert jax.tree.leaves(PlainSurrogate().record(None)) == []
