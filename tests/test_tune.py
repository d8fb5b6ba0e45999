"""The tuner (`purejaxppo.tune`): it ranks what works above what does not, compiles one program per structural
group and rung, confirms on seeds the search never saw, resumes after a kill, and refuses bad input in one line
before anything compiles."""

import json
import os
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import cli_env, run_cli, run_main

from purejaxppo import PPOConfig
from purejaxppo.cli.tune import main
from purejaxppo.scale import sweep as sweep_module
from purejaxppo.scale.search import Choices, Range, parse_param, rung_updates, sample_trials, survivors
from purejaxppo.scale.tune import SearchPlan, Tuner, tune

TINY = PPOConfig(env="CartPole-v1", total_timesteps=4 * 128 * 27)  # 27 updates: rungs at 3, 9, 27


def one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


# --- the search space and its trials ------------------------------------------------------------------------


def test_param_specs_parse_to_ranges_and_choices():
    assert parse_param("lr=log:1e-4:1e-2") == ("lr", Range(1e-4, 1e-2, log=True))
    assert parse_param("gamma=lin:0.9:0.999") == ("gamma", Range(0.9, 0.999))
    assert parse_param("num_envs=8,16,32") == ("num_envs", Choices((8, 16, 32)))
    assert parse_param("hidden-sizes=64x64,128x128") == ("hidden_sizes", Choices(((64, 64), (128, 128))))
    assert parse_param("activation=tanh,relu") == ("activation", Choices(("tanh", "relu")))


def test_trials_cover_the_space_evenly_and_split_over_the_groups():
    space = {"lr": Range(1e-4, 1e-2, log=True), "num_envs": Choices((4, 8))}
    trials = sample_trials(space, 33, seed=5)
    assert len(trials) == 33 and sorted(t.index for t in trials) == list(range(33))
    groups = [dict(t.structure)["num_envs"] for t in trials]
    assert groups.count(4) == 17 and groups.count(8) == 16
    lrs = np.log10([dict(t.params)["lr"] for t in trials if dict(t.structure)["num_envs"] == 4])
    assert lrs.min() >= -4 and lrs.max() <= -2
    assert np.histogram(lrs, bins=4, range=(-4, -2))[0].min() >= 3  # quasi-random: every quarter is visited
    assert sample_trials(space, 33, seed=5) == trials  # the same seed, the same trials (what a resume relies on)


def test_rungs_and_survivors():
    assert rung_updates(27, 3, 3) == [3, 9, 27]
    assert rung_updates(976, 3, 3) == [108, 325, 976]
    assert survivors([1.0, float("nan"), 5.0, 3.0, 2.0], eta=3) == [2, 3]  # the best ceil(5 / 3), NaN worst


@pytest.mark.parametrize("argv, message", [
    (["--param", "learning_rate=log:1e-4:1e-2"], "--param learning_rate is not a field the tuner can search"),
    (["--param", "lr=log:1e-2:1e-4"], "is an empty or inverted range"),
    (["--param", "lr=lin:1e-3:1e-3"], "is an empty or inverted range"),
    (["--param", "lr=log:0:1e-2"], "is a log range with a bound <= 0"),
    (["--param", "lr"], "write NAME=log:LOW:HIGH"),
    (["--param", "num_envs=lin:4:8"], "--param num_envs is structural: give its choices"),
    (["--param", "num_minibatches=3,4"], "--param num_minibatches=3 is invalid here"),
    (["--param", "lr=log:1e-4:1e-2", "--param", "num_envs=4,8", "--trials", "1"], "fewer than the 2 structural"),
    (["--config", "/nonexistent.json"], "--config /nonexistent.json is unreadable"),
    (["--trials", "0"], "--trials 0 is invalid"),
    (["--only"], "--only searches the --param fields alone"),
    (["--search-fraction", "0"], "--search-fraction 0.0 is invalid: must be in (0, 1]"),
    (["--search-fraction", "1.5"], "--search-fraction 1.5 is invalid"),
    (["--search-fraction", "0.001"], "search fraction 0.001 is too small: 200 env steps are less than one batch"),
])
def test_bad_input_is_one_line_before_anything_compiles(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert message in one_line_error(capsys, [*argv, "--out", str(out)])
    assert not out.exists() or not any(p.name != ".purejaxppo.lock" for p in out.iterdir())


def test_a_config_file_with_unknown_fields_is_refused(tmp_path, capsys):
    path = tmp_path / "best.json"
    path.write_text(json.dumps({"env": "CartPole-v1", "learning_rate": 1e-3}))
    assert "holds unknown fields 'learning_rate'" in one_line_error(capsys, ["--config", str(path)])


# --- the search itself ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def working_and_broken(tmp_path_factory):
    """A search between a learning rate that learns and one that cannot (1e-12), in two structural groups of two
    rungs, with every Sweep it made and every sweep program built counted (compiled, or loaded from the session's
    compile cache: `test_sweep.CompileCounter`)."""
    from test_sweep import CompileCounter

    made = []
    original = sweep_module.Sweep.__init__

    def recording(self, config, num_seeds=1, seed=0, *args, **kwargs):
        made.append((config.num_envs, num_seeds, seed))
        original(self, config, num_seeds, seed, *args, **kwargs)

    sweep_module.Sweep.__init__ = recording
    try:
        with CompileCounter() as compiles:
            result = tune(TINY, num_trials=6, num_seeds=2, space={"lr": Choices((3e-3, 1e-12)),
                                                                  "num_envs": Choices((4, 8))},
                          rungs=2, confirm_top=2, confirm_seeds=3, seed=1000)
    finally:
        sweep_module.Sweep.__init__ = original
    return result, made, compiles


@pytest.mark.slow
def test_the_working_learning_rate_ranks_first_and_wins(working_and_broken):
    result, _, _ = working_and_broken
    assert dict(result.scored[0].trial.params)["lr"] == 3e-3
    assert result.best_config.lr == 3e-3 and np.isfinite(result.best.confirmed).all()
    broken = [s for s in result.scored if dict(s.trial.params)["lr"] == 1e-12]
    assert max(s.search_score for s in broken) < result.scored[0].search_score


@pytest.mark.slow
def test_one_program_per_structural_group_and_rung(working_and_broken):
    result, _, compiles = working_and_broken
    groups, rungs = 2, 2
    confirmation_groups = len({s.trial.structure for s in result.scored[:2]})
    assert result.compiles == groups * rungs + confirmation_groups
    assert compiles.count("sweep_program") == result.compiles


@pytest.mark.slow
def test_the_confirmation_uses_seeds_the_search_did_not(working_and_broken):
    _, made, _ = working_and_broken
    search = {(seed, n) for _, n, seed in made if n == 2}
    confirmation = {(seed, n) for _, n, seed in made if n == 3}
    assert search == {(1000, 2)} and confirmation == {(1002, 3)}  # seeds 1000-1001, then 1002-1004


# --- multi-fidelity: search short, confirm whole ----------------------------------------------------------------


@pytest.fixture(scope="module")
def short_search():
    """A third of TINY's budget per trial in the search, between two working and two broken learning rates; the
    config of every Sweep made, and the learning rate each program's schedule starts from and reaches."""
    made = []
    original = sweep_module.Sweep.__init__

    def recording(self, config, num_seeds=1, seed=0, *args, **kwargs):
        made.append(config)
        original(self, config, num_seeds, seed, *args, **kwargs)

    sweep_module.Sweep.__init__ = recording
    try:
        result = tune(TINY, num_trials=4, num_seeds=2, space={"lr": Choices((3e-3, 2e-3, 1e-12, 2e-12))}, rungs=1,
                      confirm_top=4, confirm_seeds=2, seed=1000, search_fraction=1 / 3)
    finally:
        sweep_module.Sweep.__init__ = original
    return result, made


@pytest.mark.slow
def test_a_short_search_ranks_the_working_learning_rates_first(short_search):
    result, _ = short_search
    search_order = [dict(s.trial.params)["lr"] for s in result.scored]
    assert set(search_order[:2]) == {3e-3, 2e-3}, search_order
    assert result.best_config.lr in (3e-3, 2e-3) and result.best_config.total_timesteps == TINY.total_timesteps
    # every trial confirmed on the whole budget: the search's order against it, the broken pair below the working
    assert all(s.confirmed is not None for s in result.scored)
    assert result.rank_correlation >= 0.6


@pytest.mark.slow
def test_the_search_trains_a_fraction_of_the_budget_and_the_confirmation_all_of_it(short_search):
    from purejaxppo.core.update import make_schedule

    _, made = short_search
    search, confirmation = made[0], made[-1]
    assert search.num_updates == 9 and confirmation.num_updates == 27
    assert [c.total_timesteps for c in made] == [TINY.total_timesteps // 3, TINY.total_timesteps]
    # the schedule is the short run's own: its learning rate reaches 0 at the short run's last step
    grad_steps = search.num_updates * search.update_epochs * search.num_minibatches
    schedule = make_schedule(search)
    assert float(schedule(0)) == pytest.approx(search.lr) and float(schedule(grad_steps)) == 0.0
    assert float(schedule(grad_steps // 2)) == pytest.approx(search.lr / 2)


def test_rank_correlation_reads_the_search_order_against_the_confirmed_means():
    from purejaxppo.scale.halving import Scored, rank_correlation
    from purejaxppo.scale.search import Trial

    def scored(i, confirmed):
        return Scored(Trial(i, (), (("lr", 1e-3),)), [0.0], None if confirmed is None else np.full(3, confirmed))

    assert rank_correlation([scored(0, 9.0), scored(1, 5.0), scored(2, None), scored(3, 1.0)]) == 1.0
    assert rank_correlation([scored(0, 1.0), scored(1, 5.0), scored(2, 9.0)]) == -1.0
    assert np.isnan(rank_correlation([scored(0, 1.0), scored(1, 1.0)]))  # ties only: undefined
    assert np.isnan(rank_correlation([scored(0, 1.0), scored(1, None)]))


class MemoryFolder:
    """A tuner's hooks, keeping what a folder would in memory: every state saved (as JSON), every rung's rows."""

    def __init__(self):
        self.states, self.rows = [], {}

    def save(self, state):
        self.states.append(json.loads(json.dumps(state)))

    def save_rung(self, group, plan, rows):
        assert rows.metrics["episode_return"].shape[0] == plan.num_runs
        self.rows[group, rows.done] = rows

    def restore_rung(self, group, template, updates):
        rows = self.rows[group, updates]
        assert jax.tree.map(np.shape, rows.metrics) == jax.tree.map(np.shape, template.metrics)
        return rows


SMALL_ARGS = ["--env", "CartPole-v1", "--num-envs", "4", "--num-steps", "16", "--num-minibatches", "2",
              "--total-timesteps", str(64 * 9), "--param", "lr=log:1e-3:1e-2", "--only", "--trials", "3",
              "--num-seeds", "2", "--rungs", "2", "--confirm", "1", "--confirm-seeds", "2"]
"""The tuning command's flags for SMALL's search: its programs are the ones `uninterrupted` compiled."""

SMALL = SearchPlan(PPOConfig.for_env("CartPole-v1", num_envs=4, num_steps=16, num_minibatches=2,
                                     total_timesteps=64 * 9),
                   {"lr": Range(1e-3, 1e-2, log=True)}, num_trials=3, num_seeds=2, rungs=2, confirm_top=1,
                   confirm_seeds=2)  # 9 updates: rungs at 3 and 9, one trial goes on, one confirmed


@pytest.fixture(scope="module")
def program_cache() -> Path:
    """The session's cache of traced programs, beside its compile cache (`conftest.compile_cache`): a tuner resumed
    here, or the command tuning SMALL, loads the programs that `uninterrupted` built instead of building them."""
    return Path(os.environ["PUREJAXPPO_CACHE"]) / "programs"


@pytest.fixture(scope="module")
def uninterrupted(program_cache):
    folder, labels = MemoryFolder(), []
    result = Tuner(SMALL, on_chunk=lambda label, done, stop: labels.append(label), on_save=folder.save,
                   checkpoints=folder, program_cache=program_cache).run()
    return result, folder, labels


def _same(a, b):
    assert [(s.trial, s.rung_scores) for s in a.scored] == [(s.trial, s.rung_scores) for s in b.scored]
    assert a.best.trial == b.best.trial and np.array_equal(a.best.confirmed, b.best.confirmed)
    assert a.best_config == b.best_config and a.compiles == b.compiles


@pytest.mark.slow
@pytest.mark.parametrize("saved", [0, 1, 2])  # after the first rung, after the second, after the confirmation
def test_a_tuner_resumed_from_its_saved_state_reaches_the_uninterrupted_result(uninterrupted, program_cache, saved):
    whole, folder, _ = uninterrupted
    assert len(folder.states) == 3 and whole.compiles == 3
    state, labels = json.loads(json.dumps(folder.states[saved])), []
    resumed = Tuner(SMALL, state, on_chunk=lambda label, done, stop: labels.append(label), checkpoints=folder,
                    program_cache=program_cache).run()
    _same(resumed, whole)
    trained = {"group 1/1, rung 2/2": saved < 1, "confirming": saved < 2}
    assert set(labels) == {label for label, trains in trained.items() if trains}  # nothing trained twice


def test_a_search_stopped_between_rungs_needs_its_checkpoints_to_resume():
    state = {"groups": {"0": {"rung": 1, "alive": [0], "scores": {"0": [1.0], "1": [0.5], "2": [0.0]}}},
             "confirmed": {}, "compiles": 1, "seconds": 0.0}
    with pytest.raises(ValueError, match="resumes only from its rows' checkpoints"):
        Tuner(SMALL, state).run()


@pytest.mark.slow
def test_the_tuner_reports_its_rungs_and_the_confirmation_in_order(uninterrupted):
    _, _, labels = uninterrupted
    assert list(dict.fromkeys(labels)) == ["group 1/1, rung 1/2", "group 1/1, rung 2/2", "confirming"]


KILL_AFTER_THE_FIRST_RUNG = """
import os, signal
from purejaxppo.io.tune_state import TunerFolder
save, saves = TunerFolder.save, []
def save_then_die(self, state):
    save(self, state)
    saves.append(1)
    if len(saves) == 2:  # the spec, then the first rung: killed between the rungs
        os.kill(os.getpid(), signal.SIGKILL)
TunerFolder.save = save_then_die
import sys
from purejaxppo.cli.tune import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.portable  # an injected fault, with test_faults.py
def test_a_killed_tuner_resumes_where_it_stopped_to_the_same_result(tmp_path, uninterrupted):
    """The command tunes SMALL whole, then again killed after its first rung and resumed. Only the kill needs a
    process of its own; given this process's one device, all three load the programs `uninterrupted` compiled."""
    args = [*SMALL_ARGS, "--quiet"]
    whole = run_main(*args, "--out", str(tmp_path / "whole"), module="purejaxppo.cli.tune")
    assert whole.returncode == 0, whole.stderr
    killed = run_cli("-c", KILL_AFTER_THE_FIRST_RUNG, *args, "--out", str(tmp_path / "killed"), module=None,
                     env=cli_env(JAX_NUM_CPU_DEVICES="1"))
    assert killed.returncode == -9
    assert json.loads((tmp_path / "killed" / "tune_state.json").read_text())["groups"]["0"]["rung"] == 1
    resumed = run_main("--resume", str(tmp_path / "killed"), "--quiet", module="purejaxppo.cli.tune")
    assert resumed.returncode == 0, resumed.stderr
    for name in ("trials.csv", "ranked.md", "best.json"):
        assert (tmp_path / "killed" / name).read_text() == (tmp_path / "whole" / name).read_text(), name
    # that a best.json trains with `run --config` is test_custom_env's and test_untrusted_files' to show
