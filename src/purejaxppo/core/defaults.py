"""The defaults each env trains with unless told otherwise (`PPOConfig.for_env`, the CLI): its suite's row, then
its own, over `PPOConfig`'s class defaults (PPO's classic CartPole settings). A suite's defaults, and its envs'
own, are in its row of `core.env_ids.SUITES`; gymnax's envs' are here.

Every row names where it comes from in `SOURCES`: a tuner run's record, `experiments/tuning/<env>/` (its command,
tables and best.json, here to 4 significant digits; `experiments/tune_all.py --print-defaults` prints the rows),
or the section of docs/defaults.md that says why a row was set by hand and what it measured.
"""

from __future__ import annotations

from typing import Any

from purejaxppo.core import env_ids

_MINATAR = ("Asterix", "Breakout", "Freeway", "Seaquest", "SpaceInvaders")

ENV_DEFAULTS: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(total_timesteps=200_000, num_envs=8, update_epochs=10, lr=3.588e-3, gamma=0.9846,
                        gae_lambda=0.9667, clip_eps=0.1683, ent_coef=0.04033, vf_coef=0.6118, max_grad_norm=4.463),
    "Acrobot-v1": dict(total_timesteps=500_000, num_envs=16, update_epochs=10, lr=6.38e-3, gamma=0.9689,
                       gae_lambda=0.8038, clip_eps=0.2046, ent_coef=1.122e-5, vf_coef=0.381, max_grad_norm=0.4399),
    "MountainCar-v0": dict(num_envs=16, num_steps=16, normalize_obs=True, normalize_reward=True, lr=2.802e-3,
                           gamma=0.9907, gae_lambda=0.8966, clip_eps=0.1756, ent_coef=1.237e-4, vf_coef=0.5109,
                           max_grad_norm=0.3968),
    "Pendulum-v1": dict(total_timesteps=1_000_000, num_envs=32, num_minibatches=8, update_epochs=10,
                        clip_value=False, lr=3.893e-3, gamma=0.9588, gae_lambda=0.8586, clip_eps=0.2864,
                        ent_coef=0.02693, vf_coef=0.6194, max_grad_norm=1.256),
    "MountainCarContinuous-v0": dict(total_timesteps=1_000_000, num_envs=16, ent_coef=0.0, normalize_obs=True,
                                     normalize_reward=True),
    **{f"{game}-MinAtar": dict(total_timesteps=10_000_000, num_envs=64, num_minibatches=8, lr=5e-3,
                                activation="relu") for game in _MINATAR},
    "Asterix-MinAtar": dict(total_timesteps=10_000_000, num_envs=64, num_minibatches=8, activation="relu",
                            lr=3.737e-3, gamma=0.9888, gae_lambda=0.8772, clip_eps=0.2401, ent_coef=6.254e-5,
                            vf_coef=0.5686, max_grad_norm=0.6519),
    "Catch-bsuite": dict(total_timesteps=150_000, num_envs=16, lr=4.862e-3, gamma=0.9706, gae_lambda=0.9449,
                         clip_eps=0.1647, ent_coef=2.209e-5, vf_coef=0.7731, max_grad_norm=0.5305),
    "UmbrellaChain-bsuite": dict(total_timesteps=150_000, lr=2.802e-3, gamma=0.9907, gae_lambda=0.8966,
                                 clip_eps=0.1756, ent_coef=1.237e-4, vf_coef=0.5109, max_grad_norm=0.3968),
    "DiscountingChain-bsuite": dict(total_timesteps=150_000, num_envs=16, lr=1.775e-3, gamma=0.962, gae_lambda=0.848,
                                    clip_eps=0.2242, ent_coef=1.117e-5, vf_coef=0.5822, max_grad_norm=1.312),
    "MemoryChain-bsuite": dict(total_timesteps=150_000, num_envs=16, num_steps=32, recurrent=True, lr=4.983e-4,
                               gamma=0.9535, gae_lambda=0.8424, clip_eps=0.2483, ent_coef=4.446e-5, vf_coef=0.7417,
                               max_grad_norm=0.3363),
    "MetaMaze-misc": dict(normalize_obs=True, lr=2.186e-3),
    "PointRobot-misc": dict(num_envs=16, recurrent=True, normalize_obs=True, lr=1.503e-3),
    "BernoulliBandit-misc": dict(num_envs=16, recurrent=True, normalize_obs=True, lr=3.178e-3),
}
"""Each env's own defaults: what it trains with that differs from the class defaults (gymnax's written here; a
suite's envs' added below from its row, as shipped)."""


def suite_rows() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[str, str]]:
    """From the suites' rows: their defaults by id prefix, their envs' own by id, and where each comes from."""
    suites, envs, sources = {}, {}, {}
    for suite in env_ids.SUITES:
        if suite.defaults:
            suites[suite.prefix], sources[suite.prefix] = dict(suite.defaults), suite.defaults_source
        for name, row in suite.env_defaults.items():
            envs[suite.prefix + name], sources[suite.prefix + name] = dict(row), suite.defaults_source
    return suites, envs, sources


SUITE_DEFAULTS, _SUITE_ENV_DEFAULTS, _SUITE_SOURCES = suite_rows()  # as shipped
ENV_DEFAULTS.update(_SUITE_ENV_DEFAULTS)

_TUNED = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1", "Catch-bsuite", "UmbrellaChain-bsuite",
          "DiscountingChain-bsuite", "MemoryChain-bsuite", "MetaMaze-misc", "PointRobot-misc", "BernoulliBandit-misc",
          "Asterix-MinAtar")

SOURCES: dict[str, str] = {
    **{env: f"experiments/tuning/{env}" for env in _TUNED},
    "MountainCarContinuous-v0": "docs/defaults.md#mountaincarcontinuous-v0",
    **{f"{game}-MinAtar": "docs/defaults.md#minatar" for game in _MINATAR if game != "Asterix"},
    **_SUITE_SOURCES,
}
"""Where each row of `ENV_DEFAULTS` and `SUITE_DEFAULTS` comes from (tests/test_config.py holds every row to one)."""


def defaults_for(env: str) -> dict[str, Any]:
    """The config fields `env` trains with unless told otherwise: its suite's defaults, then its own."""
    if not isinstance(env, str):
        return {}
    suite = next((s for s in env_ids.SUITES if env.startswith(s.prefix)), None)
    if suite is None:
        return dict(ENV_DEFAULTS.get(env, {}))
    return {**suite.defaults, **suite.env_defaults.get(env.removeprefix(suite.prefix), {})}
