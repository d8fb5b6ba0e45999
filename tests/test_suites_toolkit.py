"""The whole toolkit on a suite env id: checkpoints, a kill and resume, evaluate, render's refusal, the tuner."""

import json

import pytest
from conftest import run_main, run_patched

from purejaxppo.io.evaluation import check_renderable

KILL_AFTER_UPDATE_16 = """
import os, signal
from purejaxppo.scale.sweep import Sweep
advance = Sweep.advance
def advance_then_die(self, state, *args, **kwargs):
    if state.done >= 17:
        os.kill(os.getpid(), signal.SIGKILL)
    return advance(self, state, *args, **kwargs)
Sweep.advance = advance_then_die
"""


@pytest.mark.slow
@pytest.mark.end_to_end
def test_the_toolkit_on_a_suite_env(tmp_path, monkeypatch):
    """Train with checkpoints, be killed, resume, evaluate, say why it cannot render, and tune (its trials are one
    vmapped sweep): all on a suite id. Only the kill needs a process of its own; given this process's one device,
    the resume here loads the program it compiled."""
    out = tmp_path / "grid"
    args = ("--env", "xminigrid:MiniGrid-Empty-6x6", "--env-kwargs", "max_steps=40", "--total-timesteps", "8192",
            "--num-envs", "8", "--num-steps", "32", "--num-seeds", "2", "--quiet", "--checkpoint-every", "8")
    monkeypatch.setenv("JAX_NUM_CPU_DEVICES", "1")
    killed = run_patched(KILL_AFTER_UPDATE_16, *args, "--out", str(out))  # after a checkpoint
    assert killed.returncode == -9 and (out / "checkpoints").is_dir()
    assert json.loads((out / "config.json").read_text())["env_kwargs"] == {"max_steps": 40}
    resumed = run_main("--resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout and json.loads((out / "summary.json").read_text())["num_seeds"] == 2
    evaluated = run_main(str(out), "--episodes", "8", module="purejaxppo.cli.evaluate")
    assert evaluated.returncode == 0 and "xminigrid:MiniGrid-Empty-6x6, run 0" in evaluated.stdout, evaluated.stderr
    with pytest.raises(ValueError, match="cannot render xminigrid:MiniGrid-Empty-6x6: --render draws with gymnax's "
                                         "visualizer, which has no renderer for xminigrid envs"):
        check_renderable("xminigrid:MiniGrid-Empty-6x6", tmp_path / "a.gif")
    tuned = run_main(*args[:10], "--trials", "2", "--num-seeds", "1", "--confirm", "1", "--confirm-seeds", "1",
                     "--quiet", "--out", str(tmp_path / "tune"), module="purejaxppo.cli.tune")
    assert tuned.returncode == 0, tuned.stderr
    best = json.loads((tmp_path / "tune" / "best.json").read_text())
    assert best["env"] == "xminigrid:MiniGrid-Empty-6x6" and best["env_kwargs"] == {"max_steps": 40}
