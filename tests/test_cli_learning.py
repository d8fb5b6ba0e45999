"""The command line's defaults learn: CartPole solved with either objective, Pendulum well on its way.

A file of its own so that `pytest -n 2 --dist loadfile` can run these long runs beside the rest of test_cli.py.
The runs that show learning are learning checks (`make test-learning`); `make test` keeps a tiny run of the KL
objective.
"""

import json

import numpy as np
import pytest
from conftest import read_metrics, run_cli, run_main

pytestmark = pytest.mark.slow


@pytest.mark.learning
def test_cli_defaults_solve_cartpole(solved_cartpole):
    """The README's promise: `python -m purejaxppo.run --env CartPole-v1` solves it (2 seeds, 2e5 steps)."""
    summary = json.loads((solved_cartpole / "summary.json").read_text())
    assert summary["total_timesteps"] == 200_000 and summary["num_seeds"] == 2
    assert summary["final_return"] >= 475, summary
    assert min(summary["final_return_per_seed"]) >= 475, summary


def test_kl_penalty_objective_adapts_and_logs_its_coefficient(tmp_path):
    """The adaptive-KL form on a tiny run (16 updates of 4 envs x 16 steps): it trains to finite losses, and its
    coefficient starts at 1, is adapted and logged."""
    result = run_main("--env", "CartPole-v1", "--objective", "kl_penalty", "--num-envs", "4", "--num-steps", "16",
                      "--num-minibatches", "2", "--total-timesteps", "1024", "--quiet", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert all(np.isfinite(float(row["value_loss"])) for row in read_metrics(tmp_path / "metrics.csv"))
    betas = [float(row["kl_beta"]) for row in read_metrics(tmp_path / "metrics.csv")]
    assert betas[0] == 1.0 and len(set(betas)) > 2  # the coefficient was adapted and logged


@pytest.mark.learning
def test_kl_penalty_objective_solves_cartpole(tmp_path):
    """PPO's adaptive-KL form, with the CartPole defaults otherwise (2 seeds, 2e5 steps)."""
    result = run_cli("--env", "CartPole-v1", "--objective", "kl_penalty", "--num-seeds", "2", "--quiet", "--out",
                     str(tmp_path))
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["final_return"] >= 475, summary
    betas = [float(row["kl_beta"]) for row in read_metrics(tmp_path / "metrics.csv")]
    assert betas[0] == 1.0 and len(set(betas)) > 2  # the coefficient was adapted and logged


@pytest.mark.learning
def test_cli_defaults_learn_pendulum(tmp_path):
    """Pendulum-v1's defaults learn to swing up and balance within a quarter of their 1e6-step budget (random
    play scores about -1200; experiments/reference_results.md has the full budget)."""
    result = run_cli("--env", "Pendulum-v1", "--num-seeds", "2", "--total-timesteps", "262144", "--quiet", "--out",
                     str(tmp_path))
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["final_return"] >= -300, summary
