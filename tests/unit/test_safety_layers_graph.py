"""The layered screen inside a session: every layer's verdict lands in the turn record."""

from __future__ import annotations

from conftest import AppFactory
from scripted import Counselor
from theramind.config import Settings
from theramind.records import TurnRecord


def test_turn_record_keeps_each_layer_and_the_language(make_app: AppFactory, profile: dict) -> None:
    app = make_app(Counselor(risk="moderate"))
    session = app.start_session("p1", profile=profile)
    result = session.respond("Aku sudah nggak kuat lagi, aku pengen bunuh diri.")
    screen = result.record.risk_screen
    assert result.record.crisis and screen.language == "id"
    assert [v.layer for v in screen.layers] == ["patterns", "semantic", "diagnostician"]
    patterns = screen.layer("patterns")
    assert patterns is not None and "suicidal_ideation" in patterns.categories
    diagnostician = screen.layer("diagnostician")
    assert diagnostician is not None and diagnostician.level == "moderate"
    stored = app.services.store.turns("p1", 1)[-1]
    assert isinstance(stored, TurnRecord) and stored.risk_screen == screen


def test_semantic_layer_off_by_config_leaves_the_patterns(
    make_app: AppFactory, profile: dict, settings: Settings
) -> None:
    quiet = settings.model_copy(
        update={"safety": settings.safety.model_copy(update={"semantic": False})}
    )
    app = make_app(settings=quiet)
    session = app.start_session("p1", profile=profile)
    result = session.respond("Quiero quitarme la vida esta noche.")
    screen = result.record.risk_screen
    assert [v.layer for v in screen.layers] == ["patterns", "diagnostician"]
    assert result.record.crisis and screen.level == "high" and screen.language == "es"
