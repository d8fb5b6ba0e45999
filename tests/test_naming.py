"""The errors that name envs (`purejaxppo.core.envs.naming`): one similarity rule answers an unknown id in every
suite alike, and an unknown parameter or a failed creation reads the same whichever kind of env it is."""

import gymnax
import pytest

from purejaxppo.core.env_ids import SUITES
from purejaxppo.core.envs import check_env_id, make_base_env, naming
from purejaxppo.core.envs.suites import _adapter_module

KNOWN = {"gymnax": "CartPole-v1", "brax:": "brax:halfcheetah", "craftax:": "craftax:Craftax-Classic-Symbolic-v1",
         "jumanji:": "jumanji:Snake-v1", "xminigrid:": "xminigrid:MiniGrid-Empty-8x8",
         "navix:": "navix:Navix-Empty-5x5-v0"}


def _names(prefix: str) -> list[str]:
    if prefix == "gymnax":
        return list(gymnax.registered_envs)
    return _adapter_module(next(s for s in SUITES if s.prefix == prefix), prefix).names()


def _message(env_id: str) -> str:
    with pytest.raises(ValueError) as raised:
        check_env_id(env_id)
    return str(raised.value)


def test_every_suite_is_covered():
    assert set(KNOWN) == {"gymnax"} | {s.prefix for s in SUITES}


@pytest.mark.parametrize("prefix", KNOWN)
@pytest.mark.parametrize("typo", [str.swapcase, lambda name: name[:-1], lambda name: name[:3] + name[4:]],
                         ids=["case swapped", "last character dropped", "fourth character dropped"])
def test_a_typo_is_corrected_alike_in_every_suite(prefix, typo):
    known = KNOWN[prefix]
    real = known.removeprefix(prefix) if prefix != "gymnax" else known
    mistyped = known[:len(known) - len(real)] + typo(real)
    message = _message(mistyped)
    assert message.startswith(f"unknown env id {mistyped!r}: ") and "\n" not in message
    suggested = message.split("did you mean ", 1)[1].rstrip("?").split(", ")
    assert suggested[0] == known  # the real id, first
    names = _names(prefix)
    assert suggested == [known[:len(known) - len(real)] + n for n in naming.close_matches(typo(real), names)]


@pytest.mark.parametrize("prefix", KNOWN)
def test_every_suite_answers_through_the_one_rule(prefix, monkeypatch):
    calls = []
    monkeypatch.setattr(naming, "close_matches", lambda name, names: calls.append(name) or [names[0]])
    message = _message(KNOWN[prefix] + "-nope")
    assert calls == [KNOWN[prefix].removeprefix(prefix if prefix != "gymnax" else "") + "-nope"]
    assert "did you mean " in message


def test_the_rule_ignores_case_keeps_the_best_three_and_refuses_what_is_unlike():
    names = ["Acrobot-v1", "CartPole-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1"]
    assert naming.close_matches("cartpole-V1", names) == ["CartPole-v1"]
    assert naming.close_matches("MountainCar", names)[0] == "MountainCar-v0"
    assert len(naming.close_matches("n", ["n1", "n2", "n3", "n4"])) == naming.SUGGESTIONS
    assert naming.close_matches("xyz", names) == []


def test_an_id_like_none_lists_the_suites_ids():
    message = _message("xminigrid:Zzz")
    assert message.startswith("unknown env id 'xminigrid:Zzz': xminigrid has no env 'Zzz'; known xminigrid ids: ")
    assert "xminigrid:MiniGrid-Empty-8x8" in message


@pytest.mark.parametrize("env_id, kwargs", [
    ("CartPole-v1", {"nope": 1}),
    ("purejaxppo.examples.corridor:make", {"nope": 1}),
    ("xminigrid:MiniGrid-Empty-8x8", {"nope": 1}),
    ("craftax:Craftax-Classic-Symbolic-v1", {"nope": 1}),
    ("jumanji:Snake-v1", {"nope": 1}),
    ("navix:Navix-Empty-5x5-v0", {"nope": 1}),
])
def test_an_unknown_parameter_reads_the_same_for_every_kind_of_env(env_id, kwargs):
    with pytest.raises(ValueError) as raised:
        make_base_env(env_id, **kwargs)
    head, valid = str(raised.value).split("; valid names: ")
    assert head == f"env {env_id!r} has no parameter 'nope'"
    assert valid.split(", ") == sorted(set(valid.split(", "))) and "max_steps_in_episode" in valid.split(", ")


def test_a_failed_creation_names_the_env_and_the_cause():
    def fails(**kwargs):
        raise OSError("disk full")

    with pytest.raises(ValueError, match=r"^could not create env 'x:y': OSError: disk full$"):
        naming.create("x:y", fails, size=3)
