"""Bad input gets a typed `InputError` naming the problem, before anything is written."""

from __future__ import annotations

import pytest

from conftest import AppFactory
from theramind import InputError, PatientProfile
from theramind.services import CounselContext
from theramind.validation import validate_message

INVISIBLE = {
    "zero-width space": "\u200b\u200b",
    "zero-width joiners": "\u200c\u200d\u2060",
    "byte order mark": "\ufeff",
    "tag characters": "\U000e0041\U000e0042\U000e007f",
    "combining marks": "\u0301\u0308\u20dd",
    "hangul filler": "\u3164 \u3164",
    "variation selector and spaces": "\ufe0f \u00a0 \u3000",
}


def test_a_profile_for_another_patient_writes_nothing(make_app: AppFactory, profile: dict) -> None:
    app = make_app()
    app.register_patient(dict(profile, patient_id="victim"))
    forged = dict(profile, patient_id="victim", presenting_problem="overwritten by attacker")
    with pytest.raises(InputError, match="does not match"):
        app.start_session("attacker", profile=forged)
    assert app.patient("victim").presenting_problem == profile["presenting_problem"]
    assert not app.services.store.has_patient("attacker")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pseudonym", "A" * 1_000_000),
        ("category", "c" * 10_000),
        ("presenting_problem", "low mood\x00and more"),
        ("history", "bad \ud800 surrogate"),
        ("pseudonym", "Al\x00ex"),
        ("age", "old"),
        ("patient_id", "has spaces"),
        ("surname", "Smith"),
    ],
)
def test_invalid_profiles_raise_input_error_naming_the_field(
    make_app: AppFactory, profile: dict, field: str, value: object
) -> None:
    app = make_app()
    bad = dict(profile, **{field: value})
    with pytest.raises(InputError, match=field) as caught:
        app.start_session(bad.get("patient_id", "p1"), profile=bad)
    assert type(caught.value) is InputError  # not pydantic's ValidationError
    with pytest.raises(InputError, match=field):
        app.register_patient(bad)
    assert app.services.store.patients() == []


def test_an_invalid_profile_object_is_checked_again(make_app: AppFactory, profile: dict) -> None:
    app = make_app()
    built = PatientProfile.model_construct(**dict(profile, pseudonym="x" * 5000))
    with pytest.raises(InputError, match="pseudonym"):
        app.register_patient(built)


@pytest.mark.parametrize("name", sorted(INVISIBLE))
def test_invisible_only_messages_are_refused(
    make_app: AppFactory, profile: dict, name: str
) -> None:
    app = make_app()
    session = app.start_session("p1", profile=profile)
    with pytest.raises(InputError, match="visible"):
        session.respond(INVISIBLE[name])
    assert session.turns == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [("I feel \ud83d low", "surrogate"), ("half\x00way", "NUL"), ("\udfff", "surrogate")],
)
def test_messages_that_cannot_be_encoded_are_refused(
    make_app: AppFactory, profile: dict, text: str, problem: str
) -> None:
    app = make_app()
    session = app.start_session("p1", profile=profile)
    with pytest.raises(InputError, match=problem):
        session.respond(text)
    assert session.turns == []


@pytest.mark.parametrize("text", ["🙂", "e\u0301", "ok\u200b", "ای"])
def test_visible_text_with_marks_or_emoji_is_accepted(text: str) -> None:
    assert validate_message(text, 100) == text


def test_the_graph_screens_messages_with_the_same_rules(
    make_app: AppFactory, profile: dict
) -> None:
    app = make_app()
    app.start_session("p1", profile=profile).release()
    context = CounselContext("p1", 1, services=app.services)
    config = {"configurable": {"thread_id": "p1:1"}}
    for bad in ("\u200b\ufeff", "x\x00", "x" * 5000):
        with pytest.raises(InputError):
            app.session_graph.invoke({"message": bad}, config, context=context)
    assert app.services.store.turns("p1", 1) == []


def test_session_numbers_out_of_range_are_input_errors(make_app: AppFactory, profile: dict) -> None:
    app = make_app()
    app.register_patient(profile)
    for bad in (10**30, 0, -1, True, "2", 2.0):
        with pytest.raises(InputError, match="first"):
            app.discard_sessions("p1", bad)  # type: ignore[arg-type]
        with pytest.raises(InputError):
            app.session("p1", bad)  # type: ignore[arg-type]
