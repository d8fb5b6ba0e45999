"""Sweeps: a grid of numeric hyperparameters x seeds as ONE compiled program, equal run by run to single runs.

Every expensive piece (a compile costs seconds on CPU) is made once per module: the 3 lr x 8 seeds sweep and the
single-run references it is compared with.
"""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from purejaxppo import SweepResult
from purejaxppo.core.config import NUMERIC_FIELDS, PPOConfig
from purejaxppo.core.metrics import METRICS
from purejaxppo.core.train import make_train
from purejaxppo.scale.stats import mean_ci95
from purejaxppo.scale.sweep import Sweep, sweep

BASE = PPOConfig(env="CartPole-v1", total_timesteps=512 * 5)  # 4 envs x 128 steps: 5 updates
LRS = (1e-4, 3e-4, 1e-3)
NUM_SEEDS = 8
SEED = 0
COMPARED = ("episode_return", "value_loss", "policy_loss", "entropy", "approx_kl")


def _close(actual, desired, err_msg=""):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(desired), rtol=1e-4, atol=1e-5, equal_nan=True,
                               err_msg=err_msg)


class CompileCounter:
    """Counts the programs built, by the name of the function, from the duration event JAX records as it lowers
    each to XLA (`jax.monitoring`), while in a `with` block: a program compiled and one loaded from JAX's
    persistent cache (which the tests share, conftest.compile_cache) count the same."""

    EVENT = "/jax/core/compile/jaxpr_to_mlir_module_duration"

    def __init__(self):
        self.names: list[str] = []

    def _listen(self, event, duration, **kwargs):
        if event == self.EVENT:
            self.names.append(kwargs.get("fun_name", ""))

    def __enter__(self):
        jax.monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self._listen)

    def count(self, fun_name: str) -> int:
        """Programs built of the jitted function `fun_name`."""
        return sum(name == f"jit({fun_name})" for name in self.names)


@pytest.fixture(scope="module")
def lr_sweep():
    """sweep(BASE, 8 seeds, lr=3 values) with a callback, as a `Sweep` whose parts the tests read, the XLA
    compilations it made, and the callback's calls."""
    calls = []
    job = Sweep(BASE, NUM_SEEDS, SEED, callback=lambda m: calls.append(jax.tree.map(np.array, m)), lr=list(LRS))
    with CompileCounter() as compiles:
        result = job.run()
    return result, (job, compiles), calls


VF_CLIP_BASE = dataclasses.replace(BASE, total_timesteps=512 * 2)


@pytest.fixture(scope="module")
def vf_clip_sweep():
    """sweep(BASE for 2 updates, 1 seed, vf_clip_eps=[1e-4, 10]), and the XLA compilations it made: a second
    program, which a test of its own reads too."""
    with CompileCounter() as compiles:
        result = sweep(VF_CLIP_BASE, 1, 0, vf_clip_eps=[1e-4, 10.0])
    return result, compiles


_single_cache = {}


@functools.cache
def jitted_train(config: PPOConfig):
    """jax.jit(make_train(config)), one per config: every seed's run of it compiles once."""
    return jax.jit(make_train(config))


def single_run(config: PPOConfig, seed: int):
    """The reference: one plain jitted run of `config` with jax.random.key(seed) (cached per config and seed)."""
    key = (config, seed)
    if key not in _single_cache:
        _single_cache[key] = jax.device_get(jitted_train(config)(jax.random.key(seed)))
    return _single_cache[key]


# --- one compile --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sweep_compiles_once(lr_sweep, vf_clip_sweep):
    result, (job, compiles), _ = lr_sweep
    assert result.metrics["episode_return"].shape == (3, NUM_SEEDS, 5)
    # 3 configurations x 8 seeds = 24 runs, one XLA compilation of the sweep's program, fed all 24 rows
    assert compiles.count("sweep_program") == 1, compiles.names
    rows, keys = job.rows
    assert rows["lr"].shape == (24,) and keys.shape[0] == 24
    assert job.compiled.advance.in_avals[0][0]["lr"].shape == (24,)

    # the counting would see a second compilation: a different total_timesteps is a new program
    other, again = vf_clip_sweep
    assert other.metrics["episode_return"].shape == (2, 1, 2)
    assert again.count("sweep_program") == 1


# --- each run of the sweep is the single run ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("c, s", [(0, 0), (1, 0), (2, 0), (1, 5), (2, 7)])
def test_each_sweep_run_equals_the_single_run(lr_sweep, c, s):
    result, _, _ = lr_sweep
    config = result.config_at(c)
    assert config.lr == LRS[c] and dataclasses.replace(config, lr=BASE.lr) == BASE
    single = single_run(config, SEED + s)
    for name in COMPARED:
        _close(result.metrics[name][c, s], single.metrics[name], err_msg=f"{name} of config {c}, seed {s}")
    jax.tree.map(lambda a, b: _close(a[c, s], b), result.params, single.params)


@pytest.mark.slow
def test_sweep_runs_differ(lr_sweep):
    """The comparisons above are not vacuous: lrs and seeds give different runs."""
    result, _, _ = lr_sweep
    loss = result.metrics["value_loss"]
    assert not np.allclose(loss[0, 0], loss[2, 0], rtol=1e-3)
    assert not np.allclose(loss[1, 0], loss[1, 5], rtol=1e-3)
    # the learning rate each configuration ran with (its first update is un-annealed)
    np.testing.assert_allclose(result.metrics["learning_rate"][:, :, 0],
                               np.repeat(np.asarray(LRS)[:, None], NUM_SEEDS, 1), rtol=1e-6)


# --- SweepResult --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sweep_result_shapes(lr_sweep):
    result, _, _ = lr_sweep
    assert isinstance(result, SweepResult)
    assert set(result.metrics) == set(METRICS)
    for name, x in result.metrics.items():
        assert x.shape == (3, NUM_SEEDS, BASE.num_updates), name
    assert result.num_configs == 3
    assert list(result.hyperparams) == ["lr"]
    np.testing.assert_array_equal(result.hyperparams["lr"], LRS)
    np.testing.assert_array_equal(result.seeds, np.arange(SEED, SEED + NUM_SEEDS))
    assert result.final_returns.shape == (3, NUM_SEEDS)
    reference = jax.eval_shape(make_train(BASE), jax.random.key(0)).params
    assert jax.tree.structure(result.params) == jax.tree.structure(reference)
    for leaf, ref in zip(jax.tree.leaves(result.params), jax.tree.leaves(reference)):
        assert leaf.shape == (3, NUM_SEEDS) + ref.shape
    # env_steps counts each run's own steps
    np.testing.assert_array_equal(result.metrics["env_steps"][1, 3], 512 * np.arange(1, 6))


@pytest.mark.slow
def test_summary_ranked_with_student_t_interval(lr_sweep):
    result, _, _ = lr_sweep
    rows = result.summary()
    assert sorted(r["config"] for r in rows) == [0, 1, 2]
    finals = [r["final_return"] for r in rows]
    assert all(np.isfinite(finals))
    assert finals == sorted(finals, reverse=True)
    for row in rows:
        c = row["config"]
        assert row["hyperparams"] == {"lr": LRS[c]}
        # final return of a 5-update run: the last update's mean episode return (ceil(5 * 5%) = 1 update)
        per_seed = result.metrics["episode_return"][c, :, -1].astype(np.float64)
        assert np.all(np.isfinite(per_seed))
        np.testing.assert_allclose(row["final_return_per_seed"], per_seed, rtol=1e-12)
        mean = per_seed.mean()
        low, high = scipy.stats.t.interval(0.95, len(per_seed) - 1, loc=mean, scale=scipy.stats.sem(per_seed))
        np.testing.assert_allclose(row["final_return"], mean, rtol=1e-9)
        np.testing.assert_allclose(row["ci95"], [low, high], rtol=1e-9)
        assert low < mean < high


def test_summary_ranks_configs_without_a_finished_episode_last():
    """Hand-made results: NaN (no episode ended) ranks last, not first; one finite seed has no interval."""
    episode_return = np.array([
        [[1.0, 10.0], [2.0, 20.0]],  # config 0: per seed 10, 20
        [[np.nan, np.nan], [np.nan, np.nan]],  # config 1: no episode ended
        [[5.0, 30.0], [5.0, np.nan]],  # config 2: 30 and NaN -> one finite seed
        [[0.0, 40.0], [0.0, 44.0]],  # config 3: 40, 44
    ])
    result = SweepResult(config=BASE, hyperparams={"lr": np.array([1e-4, 2e-4, 3e-4, 4e-4])}, seeds=np.arange(2),
                         metrics={"episode_return": episode_return}, params={})
    np.testing.assert_array_equal(result.final_returns, [[10, 20], [np.nan, np.nan], [30, np.nan], [40, 44]])
    rows = result.summary()
    assert [r["config"] for r in rows] == [3, 2, 0, 1]
    assert [r["hyperparams"]["lr"] for r in rows] == [4e-4, 3e-4, 1e-4, 2e-4]
    assert rows[0]["final_return"] == 42.0
    half = 12.706204736174707 * math.sqrt(8) / math.sqrt(2)  # t_{0.975, 1} * std([40, 44]) / sqrt(2)
    assert rows[0]["ci95"] == [pytest.approx(42 - half), pytest.approx(42 + half)]
    assert rows[1]["final_return"] == 30.0 and all(math.isnan(v) for v in rows[1]["ci95"])
    assert math.isnan(rows[3]["final_return"]) and all(math.isnan(v) for v in rows[3]["ci95"])


def test_mean_ci95_known_numbers():
    # [1, 2, 3, 4]: mean 2.5, sample std sqrt(5/3), t_{0.975, 3} = 3.182446305284263 (a t table)
    mean, low, high = mean_ci95(np.array([1.0, 2.0, 3.0, 4.0]))
    half = 3.182446305284263 * math.sqrt(5 / 3) / math.sqrt(4)
    assert mean == pytest.approx(2.5)
    assert (low, high) == (pytest.approx(2.5 - half, rel=1e-12), pytest.approx(2.5 + half, rel=1e-12))
    assert (low, high) == pytest.approx((0.4457397432391215, 4.554260256760879))
    # NaNs (updates where no episode ended) are dropped: [1, nan, 3] is the sample [1, 3]
    mean, low, high = mean_ci95(np.array([1.0, np.nan, 3.0]))
    half = 12.706204736174707 * math.sqrt(2) / math.sqrt(2)
    assert (mean, low, high) == pytest.approx((2.0, 2.0 - half, 2.0 + half))


def test_mean_ci95_one_sample_has_no_interval():
    mean, low, high = mean_ci95(np.array([7.0]))
    assert mean == 7.0 and math.isnan(low) and math.isnan(high)
    mean, low, high = mean_ci95(np.array([np.nan, 5.0]))
    assert mean == 5.0 and math.isnan(low) and math.isnan(high)
    assert all(math.isnan(v) for v in mean_ci95(np.array([np.nan])))


# --- the product grid ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_product_grid_is_configuration_major():
    config = dataclasses.replace(BASE, total_timesteps=512)  # one update
    lrs, ents = (1e-4, 1e-3), (0.0, 0.5)
    result = sweep(config, 2, 3, lr=list(lrs), ent_coef=list(ents))
    assert result.num_configs == 4 and list(result.hyperparams) == ["lr", "ent_coef"]
    np.testing.assert_array_equal(result.hyperparams["lr"], [1e-4, 1e-4, 1e-3, 1e-3])  # lr varies slowest
    np.testing.assert_array_equal(result.hyperparams["ent_coef"], [0.0, 0.5, 0.0, 0.5])
    assert result.config_at(1) == dataclasses.replace(config, lr=1e-4, ent_coef=0.5)
    assert result.config_at(2) == dataclasses.replace(config, lr=1e-3, ent_coef=0.0)
    for name, x in result.metrics.items():
        assert x.shape == (4, 2, 1), name
    # configuration c really trained with lr[c]
    np.testing.assert_allclose(result.metrics["learning_rate"][:, :, 0], [[1e-4] * 2, [1e-4] * 2, [1e-3] * 2,
                                                                          [1e-3] * 2], rtol=1e-6)
    # ... and with ent_coef[c]: configuration 3 (lr 1e-3, ent_coef 0.5), seed 4, is the single run of that config
    single = single_run(result.config_at(3), 3 + 1)
    for name in COMPARED:
        _close(result.metrics[name][3, 1], single.metrics[name], err_msg=name)
    jax.tree.map(lambda a, b: _close(a[3, 1], b), result.params, single.params)
    # which configuration 2 (ent_coef 0) is not: the comparison tells the ent_coefs apart
    with pytest.raises(AssertionError):
        _close(result.metrics["approx_kl"][2, 1], single.metrics["approx_kl"])

    # the rows the program is fed: one per run, configuration-major, every numeric field
    rows, keys = Sweep(config, 2, 3, lr=list(lrs), ent_coef=list(ents)).rows
    assert set(rows) == set(NUMERIC_FIELDS) - {"vf_clip_eps"}  # None (follow clip_eps) unless swept
    np.testing.assert_allclose(np.asarray(rows["lr"])[:8], np.float32([1e-4] * 4 + [1e-3] * 4))
    np.testing.assert_allclose(np.asarray(rows["ent_coef"])[:8], np.float32([0, 0, .5, .5] * 2))
    np.testing.assert_allclose(np.asarray(rows["gamma"])[:8], np.float32([config.gamma] * 8))
    expected_keys = jax.random.key_data(jax.vmap(jax.random.key)(jnp.array([3, 4] * 4)))
    np.testing.assert_array_equal(np.asarray(keys)[:8], np.asarray(expected_keys))


# --- errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("grid", [dict(num_envs=[4, 8]), dict(hidden_sizes=[(32,), (64, 64)]),
                                  dict(env=["CartPole-v1", "Acrobot-v1"]), dict(num_steps=[64])])
def test_structural_field_cannot_be_swept(grid):
    name = next(iter(grid))
    with pytest.raises(ValueError) as e:
        sweep(BASE, 2, **grid)
    message = str(e.value)
    assert f"cannot sweep {name}" in message
    assert "structural" in message and "changes array shapes" in message
    assert "lr" in message  # lists what can be swept


@pytest.mark.parametrize("name", ["learning_rate", "foo"])
def test_unknown_field_cannot_be_swept(name):
    with pytest.raises(ValueError, match=f"cannot sweep {name}: not a PPOConfig field"):
        sweep(BASE, 2, **{name: [1e-3]})


@pytest.mark.parametrize("grid, message", [
    (dict(lr=[-1e-3]), "PPOConfig.lr=-0.001"),
    (dict(lr=[1e-3, 0.0]), "PPOConfig.lr=0.0"),
    (dict(gamma=[0.9, 1.5]), "PPOConfig.gamma=1.5"),
    (dict(ent_coef=[float("nan")]), "PPOConfig.ent_coef=nan"),
    (dict(lr=[]), "sweep of lr has no values"),
])
def test_bad_value_names_the_field(grid, message):
    with pytest.raises(ValueError) as e:
        sweep(BASE, 2, **grid)
    assert message in str(e.value)


@pytest.mark.parametrize("num_seeds", [0, -1])
def test_bad_num_seeds(num_seeds):
    with pytest.raises(ValueError, match=f"num_seeds={num_seeds}"):
        sweep(BASE, num_seeds, lr=[1e-3])


# --- the plain JAX mechanism: a config with array leaves, vmapped -------------------------------------------


@pytest.mark.slow
def test_vmap_over_a_config_with_array_leaves():
    configs = dataclasses.replace(jax.tree.map(lambda x: jnp.full(3, x), BASE), lr=jnp.array(LRS))
    assert configs.num_envs == BASE.num_envs and configs.lr.shape == (3,)
    train = jax.jit(jax.vmap(lambda cfg, key: make_train(cfg)(key), in_axes=(0, None)))
    out = jax.device_get(train(configs, jax.random.key(0)))
    for i, lr in enumerate(LRS):
        single = single_run(dataclasses.replace(BASE, lr=lr), 0)
        for name in COMPARED:
            assert out.metrics[name].shape == (3, BASE.num_updates)
            _close(out.metrics[name][i], single.metrics[name], err_msg=f"{name}, lr={lr}")
        jax.tree.map(lambda a, b: _close(a[i], b), out.params, single.params)
    np.testing.assert_allclose(out.metrics["learning_rate"][:, 0], LRS, rtol=1e-6)


@pytest.mark.parametrize("array", [np.array([1e-3, -1.0]), jnp.array([1e-3, 0.0]), np.array([1e-3, np.inf])])
def test_config_with_one_invalid_array_element_raises(array):
    with pytest.raises(ValueError, match="PPOConfig.lr="):
        PPOConfig(lr=array)
    with pytest.raises(ValueError, match="PPOConfig.lr="):
        dataclasses.replace(BASE, lr=array)
    PPOConfig(lr=np.array([1e-3, 2e-3]))  # all valid: fine


# --- the callback -------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_callback_once_per_update_with_every_run(lr_sweep):
    result, _, calls = lr_sweep
    num_runs = 3 * NUM_SEEDS
    assert len(calls) == BASE.num_updates
    for m in calls:
        assert set(m) == set(METRICS)
        for name, x in m.items():
            assert np.shape(x) == (num_runs,), name
    calls = sorted(calls, key=lambda m: int(m["env_steps"][0]))
    for u, m in enumerate(calls):
        np.testing.assert_array_equal(m["env_steps"], np.full(num_runs, 512 * (u + 1)))
        for name in METRICS:  # configuration-major [C * S], the same values the result holds
            np.testing.assert_array_equal(m[name], result.metrics[name][:, :, u].reshape(num_runs), err_msg=name)


@pytest.mark.slow
def test_a_field_that_defaults_to_another_can_be_swept(vf_clip_sweep):
    """vf_clip_eps is None (the value clip follows clip_eps) until a grid gives it values."""
    result, _ = vf_clip_sweep
    rows, _ = Sweep(VF_CLIP_BASE, 1, 0, vf_clip_eps=[1e-4, 10.0]).rows
    np.testing.assert_allclose(np.asarray(rows["vf_clip_eps"])[:2], np.float32([1e-4, 10.0]))
    # a tiny clip range holds the critic near its old values: its loss falls far less in the second update
    tight, loose = result.metrics["value_loss"][:, 0, -1]
    assert tight > loose
    assert result.config_at(0).value_clip_eps == pytest.approx(1e-4)


@pytest.mark.slow
def test_chunks_end_at_every_multiple_and_when_asked_and_compute_what_one_advance_does():
    job = Sweep(dataclasses.replace(BASE, num_envs=4, num_steps=16, num_minibatches=2, total_timesteps=64 * 400))
    job.compile()
    start = job.init()  # 400 updates: chunks are at least 4 (1%), so with every=4 they end at each multiple
    chunks = list(job.chunks(start, 10, every=(4,)))
    assert [p.done for p, _ in chunks] == [4, 8, 10] and all(seconds > 0 for _, seconds in chunks)
    whole = job.advance(job.init(), 10)
    jax.tree.map(np.testing.assert_array_equal, job.to_host(chunks[-1][0]).metrics, job.to_host(whole).metrics)
    asked = []
    stopped = list(job.chunks(job.init(), 10, every=(4,), until=lambda: asked.append(1) or len(asked) > 2))
    assert [p.done for p, _ in stopped] == [4, 8] and len(asked) == 3
    assert [p.done for p, _ in job.chunks(chunks[-1][0], 10)] == []  # nothing left before the stop
