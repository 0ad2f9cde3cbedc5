"""The layered risk screen across languages: labelled rates, obfuscations, layers, language."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from theramind.records import RISK_ORDER, RiskScreen, TurnRecord
from theramind.safety import normalize_text, screen
from theramind.safety.semantic import exemplars_path

DATA = Path(__file__).resolve().parents[1] / "data"
CASES: list[dict[str, Any]] = yaml.safe_load(
    (DATA / "risk_multilingual.yaml").read_text(encoding="utf-8")
)["cases"]
HELDOUT: list[dict[str, Any]] = yaml.safe_load(
    (DATA / "risk_heldout.yaml").read_text(encoding="utf-8")
)["cases"]
LANGUAGES = ("en", "zh", "es", "id")
KINDS = ("explicit", "passive", "self_harm", "situational", "harm_to_others", "lookalike", "benign")


def _met(case: dict[str, Any], level: str) -> bool:
    return RISK_ORDER[level] >= RISK_ORDER[case["level"]]


def _rates(cases: list[dict[str, Any]], lang: str, **kwargs: Any) -> tuple[float, float]:
    mine = [c for c in cases if c["lang"] == lang]
    risk = [c for c in mine if c["level"] != "none"]
    safe = [c for c in mine if c["level"] == "none"]
    detected = sum(_met(c, screen(c["text"], **kwargs).level) for c in risk)
    alarms = sum(screen(c["text"], **kwargs).level != "none" for c in safe)
    return detected / len(risk), alarms / len(safe)


def test_labelled_sets_cover_every_language_and_kind() -> None:
    for lang in LANGUAGES:
        for kind in KINDS:
            assert sum(c["lang"] == lang and c["kind"] == kind for c in CASES) >= 2, (lang, kind)
            assert any(c["lang"] == lang and c["kind"] == kind for c in HELDOUT), (lang, kind)
    texts = [c["text"] for c in CASES + HELDOUT]
    assert len(set(texts)) == len(texts), "duplicate texts"


def test_training_exemplars_and_test_sets_are_disjoint() -> None:
    spec = yaml.safe_load(exemplars_path().read_text(encoding="utf-8"))
    exemplars = {normalize_text(t) for texts in spec["exemplars"].values() for t in texts}
    old = yaml.safe_load((DATA / "risk_cases.yaml").read_text(encoding="utf-8"))["cases"]
    tested = {normalize_text(c["text"]) for c in CASES + HELDOUT + old}
    assert not exemplars & tested


@pytest.mark.parametrize("lang", LANGUAGES)
def test_detection_and_false_alarms_per_language(lang: str) -> None:
    # The English-only screen this replaces scored 0% on zh, es and id, and 34% on en.
    detection, false_alarms = _rates(CASES, lang)
    assert detection >= 0.9, f"{lang}: detection {detection:.2f}"
    assert false_alarms <= 0.1, f"{lang}: false alarms {false_alarms:.2f}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_patterns_alone_hold_the_floor_with_every_model_down(lang: str) -> None:
    detection, false_alarms = _rates(CASES, lang, semantic=False)
    assert detection >= 0.9, f"{lang}: detection {detection:.2f}"
    assert false_alarms <= 0.1, f"{lang}: false alarms {false_alarms:.2f}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_heldout_batch_per_language(lang: str) -> None:
    detection, false_alarms = _rates(HELDOUT, lang)
    assert detection >= 0.8 and false_alarms == 0.0, (lang, detection, false_alarms)


def test_obfuscated_forms_are_caught() -> None:
    cases = [c for c in CASES if c["kind"] == "obfuscated"]
    missed = [c["text"] for c in cases if not _met(c, screen(c["text"], semantic=False).level)]
    assert len(cases) >= 12 and not missed, missed


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("k!ll mys3lf", "kill myself"),
        ("su1c1de", "suicide"),
        ("s u i c i d e", "suicide"),
        ("k.i.l.l myself", "kill myself"),
        ("suicde", "suicide"),
        ("sucide", "suicide"),
        ("sewerslide", "suicide"),
        ("ctb", "commit suicide"),
        ("thinking of unaliving", "thinking of killing myself"),
        ("kіll myѕelf", "kill myself"),  # Cyrillic i and s
        ("ｋｉｌｌ", "kill"),
        ("k\u200bi\ufeffl\U000e0041l", "kill"),
        ("kïll̈", "kill"),
        ("我已經準備好了", "我已经准备好了"),
        ("mañana", "manana"),
    ],
)
def test_normalisation_undoes_obfuscation(raw: str, folded: str) -> None:
    assert normalize_text(raw) == folded


@pytest.mark.parametrize(
    "text",
    [
        "I just wanna cut, you know, stop drinking so much.",
        "this workout will kill me",
        "I took a bunch of photos",
        "I took a handful of notes in class.",
        "I scored 4 goals and 3 assists",
        "Este entrenamiento me va a matar.",
        "笑死我了",
        "Baterai HP-ku mati total.",
    ],
)
def test_look_alikes_raise_nothing(text: str) -> None:
    assert screen(text).level == "none", screen(text)


@pytest.mark.parametrize(
    "text",
    [
        "going to end it all tonight",
        "I'm going to kill myself tomorrow",
        "我今晚就去死",
        "Esta noche me voy a suicidar.",
        "Malam ini aku akan bunuh diri.",
    ],
)
def test_intent_with_a_time_is_high(text: str) -> None:
    assert screen(text, semantic=False).level == "high"


def test_a_past_attempt_needs_something_harmful_taken() -> None:
    assert "past_attempt" in screen("I took a bunch of pills last year.").categories
    for thing in ("photos", "notes", "selfies", "screenshots", "breaks", "classes"):
        assert screen(f"I took a bunch of {thing} last year.").level == "none", thing


def test_layers_and_language_are_recorded() -> None:
    result = screen("我不想活了")
    assert result.language == "zh" and result.level == "moderate"
    patterns, semantic = result.layer("patterns"), result.layer("semantic")
    assert patterns is not None and patterns.level == "moderate" and patterns.evidence
    assert semantic is not None and semantic.available and "p(risk)=" in semantic.note
    assert screen("Quiero morir.").language == "es"
    assert screen("Aku capek hidup, nggak kuat lagi.").language == "id"
    assert screen("I want to die.").language == "en"


def test_semantic_layer_catches_what_no_pattern_names() -> None:
    # French has no pattern file; the multilingual encoder still places it near ideation.
    result = screen("Je veux en finir avec la vie, je pense au suicide tous les jours.")
    patterns = result.layer("patterns")
    assert patterns is not None and patterns.level == "none"
    assert result.level == "moderate" and result.categories


def test_records_written_before_the_layers_still_load() -> None:
    old = {"level": "moderate", "categories": ["self_harm"], "evidence": ["cutting"]}
    result = RiskScreen.model_validate(old)
    assert result.layers == [] and result.language == "" and result.layer("patterns") is None
    fields = TurnRecord.model_fields
    assert fields["risk_screen"].default_factory is not None
