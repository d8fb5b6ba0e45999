"""PPOConfig: validation, immutability, derived sizes, pytree structure, env defaults, serialization."""

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest
from conftest import command_limit

from purejaxppo.core.config import PPOConfig
from purejaxppo.core.defaults import ENV_DEFAULTS, SOURCES, SUITE_DEFAULTS
from purejaxppo.core.train import make_train

NUMERIC = {"lr": 2.5e-4, "gamma": 0.99, "gae_lambda": 0.95, "clip_eps": 0.2, "ent_coef": 0.01, "vf_coef": 0.5,
           "max_grad_norm": 0.5, "kl_target": 0.01, "kl_beta": 1.0}  # vf_clip_eps: None, no leaf


def test_an_unknown_env_id_is_refused_where_the_env_is_made_suggesting_close_matches():
    config = PPOConfig(env="CartPole-v2")  # a config does not import the env suites to check its id
    with pytest.raises(ValueError, match="unknown env id 'CartPole-v2': did you mean CartPole-v1"):
        make_train(config)
    with pytest.raises(ValueError, match="Breakout-MinAtar"):
        make_train(PPOConfig(env="Breakout-Minatar"))
    with pytest.raises(ValueError, match="PPOConfig.env='' is invalid"):
        PPOConfig(env="")


def test_creating_a_config_imports_no_env_suite():
    code = "import sys; from purejaxppo import PPOConfig; PPOConfig.for_env('Pendulum-v1', lr=1e-3); " \
           "print(sorted(m for m in ('gymnax', 'brax', 'flax', 'optax') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=command_limit(),
                         check=True)
    assert out.stdout.split() == ["['flax']"]  # flax.struct makes the dataclass; nothing of the training stack


@pytest.mark.parametrize("field,kwargs", [
    ("num_minibatches", dict(num_envs=4, num_steps=10, num_minibatches=3)),  # 40 % 3 != 0
    ("num_minibatches", dict(num_minibatches=0)),
    ("lr", dict(lr=0.0)),
    ("lr", dict(lr=-1e-3)),
    ("lr", dict(lr=float("nan"))),
    ("gamma", dict(gamma=1.01)),
    ("gamma", dict(gamma=-0.1)),
    ("gae_lambda", dict(gae_lambda=1.5)),
    ("clip_eps", dict(clip_eps=0.0)),
    ("clip_eps", dict(clip_eps=-0.2)),
    ("ent_coef", dict(ent_coef=-0.01)),
    ("vf_coef", dict(vf_coef=-1.0)),
    ("max_grad_norm", dict(max_grad_norm=0.0)),
    ("num_envs", dict(num_envs=0)),
    ("num_envs", dict(num_envs=-4)),
    ("num_envs", dict(num_envs=2.0)),
    ("num_steps", dict(num_steps=0)),
    ("update_epochs", dict(update_epochs=0)),
    ("activation", dict(activation="foo")),
    ("hidden_sizes", dict(hidden_sizes=())),
    ("hidden_sizes", dict(hidden_sizes=(64, 0))),
    ("total_timesteps", dict(total_timesteps=4 * 128 - 1)),  # less than one batch of 4 * 128
    ("total_timesteps", dict(total_timesteps=0)),
    ("anneal_lr", dict(anneal_lr="yes")),
    ("objective", dict(objective="kl")),
    ("vf_clip_eps", dict(vf_clip_eps=0.0)),
    ("kl_target", dict(kl_target=-0.01)),
    ("kl_beta", dict(kl_beta=0.0)),
    ("kl_early_stop", dict(kl_early_stop=1)),
    ("normalize_obs", dict(normalize_obs="on")),
])
def test_bad_value_raises_naming_field(field, kwargs):
    with pytest.raises(ValueError) as e:
        PPOConfig(**kwargs)
    assert field in str(e.value)


def test_valid_edge_values_are_accepted_as_given():
    edges = PPOConfig(gamma=1.0, gae_lambda=0.0, ent_coef=0.0, vf_coef=0.0)
    assert (edges.gamma, edges.gae_lambda, edges.ent_coef, edges.vf_coef) == (1.0, 0.0, 0.0, 0.0)
    other = PPOConfig(gamma=0.0, gae_lambda=1.0)
    assert (other.gamma, other.gae_lambda) == (0.0, 1.0)
    assert PPOConfig(total_timesteps=4 * 128).num_updates == 1  # exactly one batch
    odd = PPOConfig(num_envs=3, num_steps=10, num_minibatches=5)
    assert (odd.batch_size, odd.minibatch_size) == (30, 6)


def test_frozen():
    cfg = PPOConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1e-3
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.env = "Acrobot-v1"


def test_replace_revalidates():
    cfg = PPOConfig()
    new = dataclasses.replace(cfg, lr=1e-3, num_envs=8)
    assert new.lr == 1e-3 and new.num_envs == 8 and cfg.lr == 2.5e-4 and cfg.num_envs == 4
    with pytest.raises(ValueError, match="lr"):
        dataclasses.replace(cfg, lr=-1.0)
    with pytest.raises(ValueError, match="num_minibatches"):
        dataclasses.replace(cfg, num_minibatches=3)  # 4 * 128 = 512 not divisible by 3
    with pytest.raises(ValueError, match="env"):
        dataclasses.replace(cfg, env="")


def test_size_properties():
    cfg = PPOConfig(num_envs=8, num_steps=32, num_minibatches=4, total_timesteps=10_000)
    assert cfg.batch_size == 256
    assert cfg.minibatch_size == 64
    assert cfg.num_updates == 39  # 10_000 // 256, rounded down
    default = PPOConfig()
    assert (default.batch_size, default.minibatch_size, default.num_updates) == (512, 128, 500_000 // 512)


def test_hidden_sizes_list_becomes_tuple():
    cfg = PPOConfig(hidden_sizes=[32, 32])
    assert cfg.hidden_sizes == (32, 32) and isinstance(cfg.hidden_sizes, tuple)
    hash(jax.tree.structure(cfg))  # static fields must be hashable


def test_numeric_fields_are_the_pytree_leaves():
    cfg = PPOConfig()
    leaves = jax.tree.leaves(cfg)
    assert len(leaves) == len(NUMERIC)
    assert sorted(leaves) == sorted(NUMERIC.values())
    # structural fields are static aux data: configs differing only there have different treedefs
    assert jax.tree.structure(cfg) != jax.tree.structure(PPOConfig(num_envs=8))
    assert jax.tree.structure(cfg) == jax.tree.structure(PPOConfig(lr=1e-3))
    doubled = jax.tree.map(lambda x: x * 0.5, cfg)
    assert doubled.lr == cfg.lr * 0.5 and doubled.num_envs == cfg.num_envs and doubled.env == cfg.env


def test_numeric_leaves_can_be_traced_and_vmapped():
    lrs = jnp.array([1e-4, 2e-4, 3e-4])
    cfgs = jax.tree.map(lambda x: jnp.full((3,), x), PPOConfig())
    cfgs = dataclasses.replace(cfgs, lr=lrs)
    out = jax.vmap(lambda c: c.lr * c.gamma + c.num_envs)(cfgs)
    assert jnp.allclose(out, lrs * 0.99 + 4)
    assert float(jax.jit(lambda c: c.clip_eps * 2)(PPOConfig())) == pytest.approx(0.4)


def test_for_env_applies_defaults_and_overrides_win():
    tuned = ENV_DEFAULTS["Pendulum-v1"]
    cfg = PPOConfig.for_env("Pendulum-v1")
    assert cfg.env == "Pendulum-v1"
    for k, v in tuned.items():
        assert getattr(cfg, k) == v
    assert {"lr", "gamma", "num_envs"} <= set(tuned)  # so the override check below overrides tuned fields
    over = PPOConfig.for_env("Pendulum-v1", lr=tuned["lr"] / 2, num_envs=tuned["num_envs"] // 2, clip_value=True)
    assert (over.lr, over.num_envs, over.clip_value) == (tuned["lr"] / 2, tuned["num_envs"] // 2, True)
    assert over.gamma == tuned["gamma"] != PPOConfig().gamma  # the other env defaults still apply
    # an env without tuned defaults gets the class defaults
    untuned = next(env for env in ("Catch-bsuite", "DeepSea-bsuite", "FourRooms-misc") if env not in ENV_DEFAULTS)
    assert PPOConfig.for_env(untuned) == PPOConfig(env=untuned)


@pytest.mark.parametrize("cfg", [PPOConfig(), PPOConfig.for_env("Pendulum-v1"),
                                 PPOConfig.for_env("Breakout-MinAtar", hidden_sizes=(128, 32), shared_torso=True)],
                         ids=["default", "pendulum", "minatar"])
def test_to_dict_round_trips(cfg):
    d = cfg.to_dict()
    assert set(d) == {f.name for f in dataclasses.fields(PPOConfig)}
    assert PPOConfig(**d) == cfg
    assert PPOConfig(**json.loads(json.dumps(d))) == cfg  # JSON-ready


def test_value_clip_eps_defaults_to_clip_eps_and_follows_it():
    assert PPOConfig(clip_eps=0.3).value_clip_eps == 0.3
    assert dataclasses.replace(PPOConfig(), clip_eps=0.1).value_clip_eps == 0.1  # not frozen at the default
    assert PPOConfig(clip_eps=0.3, vf_clip_eps=10.0).value_clip_eps == 10.0
    assert PPOConfig(vf_clip_eps=10.0, clip_value=False).value_clip_eps is None


def test_every_default_names_a_source_that_exists():
    """Each row of the defaults names its record: a tuner run's folder, or a section of docs/defaults.md."""
    root = Path(__file__).resolve().parents[1]
    assert set(SOURCES) == set(ENV_DEFAULTS) | set(SUITE_DEFAULTS)
    headings = {re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
                for line in (root / "docs" / "defaults.md").read_text().splitlines() if line.startswith("#")}
    for row, source in SOURCES.items():
        path, _, anchor = source.partition("#")
        assert (root / path).exists(), (row, source)
        if path.startswith("experiments/tuning/"):
            assert (root / path / "best.json").exists(), (row, source)
        if anchor:
            assert anchor in headings, (row, source)
