"""The command line: bad input fails early and cleanly; real runs write their results and learn.

Training runs call the command in this process (`conftest.run_main`), except where several CPU devices are
the point: a process of its own makes a device per core (`conftest.run_cli`).
"""

import json

import numpy as np
import pytest
from conftest import read_metrics, run_cli, run_main

from purejaxppo.cli.run import main
from purejaxppo.scale.compilation import cpu_cores


@pytest.mark.parametrize("args, message", [
    (["--env", "CartPol-v1"], "did you mean CartPole-v1"),
    (["--num-minibatches", "3"], "num_minibatches=3"),
    (["--num-envs", "3", "--num-steps", "10", "--num-minibatches", "4"], "must divide the batch"),
    (["--lr", "-0.001"], "lr=-0.001"),
    (["--lr", "0"], "lr=0.0"),
    (["--gamma", "1.5"], "gamma=1.5"),
    (["--num-seeds", "0"], "--num-seeds 0"),
    (["--total-timesteps", "10"], "total_timesteps=10"),
    (["--objective", "kl"], "objective='kl' is invalid: must be one of clip, kl_penalty"),
])
def test_bad_input_exits_with_one_line_before_writing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: ") and err.count("\n") == 1
    assert not out.exists()


def test_refuses_to_overwrite_results(tmp_path, capsys):
    (tmp_path / "summary.json").write_text("{}")
    assert main(["--out", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "summary.json").read_text() == "{}"


@pytest.mark.slow
def test_multi_seed_run_writes_results_and_matches_single_seed_runs(tmp_path):
    # The class defaults' lr and epochs: Acrobot's tuned ones (6.4e-3, 10) grow float rounding past 1e-4 in 8 updates.
    common = ["--env", "Acrobot-v1", "--total-timesteps", "16384", "--lr", "2.5e-4", "--update-epochs", "4", "--quiet"]
    multi = run_cli(*common, "--num-seeds", "4", "--seed", "3", "--out", str(tmp_path / "multi"))  # the cores
    assert multi.returncode == 0, multi.stderr
    single = run_main(*common[:-1], "--seed", "5", "--out", str(tmp_path / "single"))  # not quiet: with progress
    assert single.returncode == 0, single.stderr
    assert "compiled in" in single.stdout and "final return" in single.stdout
    assert "1 run on 1 cpu device(s)" in single.stdout
    alone_summary = json.loads((tmp_path / "single" / "summary.json").read_text())
    assert alone_summary["num_devices"] == 1 and alone_summary["num_processes"] == 1
    assert "update 8/8  steps     16,384/16,384" in single.stdout and "steps/s" in single.stdout
    # the progress line's last return is the final return the run reports (the last 5% of updates' episodes)
    last_line = [line for line in single.stdout.splitlines() if line.startswith("update 8/8")][-1]
    final_line = next(line for line in single.stdout.splitlines() if line.startswith("final return"))
    assert last_line.split("return")[1].split()[0] == final_line.split()[2].rstrip(",")

    run = tmp_path / "multi"
    assert sorted(p.name for p in run.iterdir()) == [".purejaxppo.lock", "checkpoints", "config.json",
                                                      "learning_curve.png", "metrics.csv", "summary.json"]
    summary = json.loads((run / "summary.json").read_text())
    config = json.loads((run / "config.json").read_text())
    assert summary["env"] == config["env"] == "Acrobot-v1" and config["num_envs"] == 16
    assert summary["num_seeds"] == 4 and summary["seeds"] == [3, 4, 5, 6]
    # a CPU device per core, and the seeds on all of them: a rule, never a timing
    assert summary["num_devices"] == min(cpu_cores(), 4)
    for key in ("total_timesteps", "final_return", "final_return_per_seed", "compile_seconds", "train_seconds",
                "steps_per_second"):
        assert key in summary
    num_updates = 16384 // (16 * 128)
    rows = read_metrics(run / "metrics.csv")
    assert len(rows) == 4 * num_updates
    returns = np.array([float(r["episode_return"]) for r in rows]).reshape(4, num_updates)
    last = returns[:, -1]  # 5% of 8 updates rounds up to the last one
    np.testing.assert_allclose(summary["final_return_per_seed"], last, rtol=1e-4)
    assert summary["final_return"] == pytest.approx(last.mean(), rel=1e-4)
    assert summary["steps_per_second"] == pytest.approx(
        4 * num_updates * 16 * 128 / summary["train_seconds"], rel=1e-2)

    assert [r["seed"] for r in rows[::num_updates]] == ["3", "4", "5", "6"]
    # Seed 5 inside the vmapped 4-seed run, on a core of its own or not, is the same run as seed 5 alone.
    in_multi = [r for r in rows if r["seed"] == "5"]
    alone = read_metrics(tmp_path / "single" / "metrics.csv")
    for a, b in zip(in_multi, alone):
        for name in ("episode_return", "value_loss", "entropy"):
            assert float(a[name]) == pytest.approx(float(b[name]), rel=1e-4, abs=1e-6, nan_ok=True)


@pytest.mark.slow
def test_sweep_runs_the_product_grid_and_ranks_it(tmp_path):
    result = run_main("--num-envs", "4", "--total-timesteps", "5120", "--num-seeds", "3", "--sweep", "lr=1e-4,1e-3",
                     "--sweep", "ent-coef=0,0.01", "--quiet", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "4 configs x 3 seeds" in result.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["num_configs"] == 4 and summary["swept"] == ["lr", "ent_coef"]
    configs = summary["configs"]
    assert sorted((c["hyperparams"]["lr"], c["hyperparams"]["ent_coef"]) for c in configs) == [
        (1e-4, 0.0), (1e-4, 0.01), (1e-3, 0.0), (1e-3, 0.01)]
    means = [c["final_return"] for c in configs]
    assert means == sorted(means, reverse=True)  # ranked, best first
    for c in configs:
        assert c["final_return"] == pytest.approx(np.mean(c["final_return_per_seed"]), rel=1e-3)
        low, high = c["ci95"]
        assert low <= c["final_return"] <= high
    assert summary["final_return"] == configs[0]["final_return"]

    rows = read_metrics(tmp_path / "metrics.csv")
    assert list(rows[0])[:5] == ["config", "seed", "update", "lr", "ent_coef"]
    assert len(rows) == 4 * 3 * 10
    # The printed table lists the configurations in the ranked order.
    table = result.stdout[result.stdout.index("rank"):]
    best = configs[0]["hyperparams"]
    assert table.splitlines()[1].split()[:3] == ["1", f"{best['lr']:g}", f"{best['ent_coef']:g}"]


@pytest.mark.parametrize("sweep, message", [
    ("num_envs=4,8", "structural"),
    ("hidden_sizes=32,64", "structural"),
    ("lr=1e-4,-1", "lr=-1.0"),
    ("lr", "NAME=V1,V2"),
    ("lr=fast", "NAME=V1,V2"),
    ("learning_rate=1e-4", "not a PPOConfig field"),
])
def test_bad_sweep_exits_before_writing(tmp_path, capsys, sweep, message):
    out = tmp_path / "out"
    assert main(["--sweep", sweep, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()
