"""Parsing and repair of raw model output."""

from __future__ import annotations

import pytest

from theramind.llm.parsing import extract_json, repair, split_reasoning, strip_role_prefix
from theramind.llm.structured import json_schema_of, parse_structured
from theramind.records import Perception, SessionSummary


def test_split_reasoning_keeps_reasoning_out_of_the_visible_text() -> None:
    visible, reasoning = split_reasoning("<think>the patient is sad</think>I hear you.")
    assert visible == "I hear you."
    assert reasoning == "the patient is sad"


def test_unterminated_think_is_hidden() -> None:
    visible, reasoning = split_reasoning("<think>still reasoning and cut off")
    assert visible == ""
    assert "still reasoning" in reasoning


@pytest.mark.parametrize(
    "raw",
    [
        '{"a": 1}',
        '```json\n{"a": 1}\n```',
        'Sure! Here it is: {"a": 1} Hope that helps.',
        '<think>hmm {"b": 2}</think>{"a": 1}',
    ],
)
def test_extract_json_finds_the_object(raw: str) -> None:
    assert extract_json(raw) == {"a": 1}


def test_extract_json_raises_without_an_object() -> None:
    with pytest.raises(ValueError):
        extract_json("no json here")


def test_repair_maps_labels_clamps_numbers_and_coerces() -> None:
    schema = json_schema_of(Perception)
    data = {
        "emotion": "sadness",
        "intensity": 7,
        "attitude": "Negative",
        "resistance": "yes",
        "topic_deviation": "false",
        "wants_to_end": False,
        "risk_level": "NONE",
        "unknown_key": 1,
    }
    fixed = repair(data, schema)
    assert fixed["intensity"] == 1.0
    assert fixed["attitude"] == "negative"
    assert fixed["risk_level"] == "none"
    assert fixed["resistance"] is True and fixed["topic_deviation"] is False
    assert "unknown_key" not in fixed
    Perception.model_validate(fixed)


def test_repair_truncates_lists_and_strings() -> None:
    raw = {"summary": "x" * 900, "salient": [{"kind": "goal", "text": "t"}] * 9, "next_focus": "f"}
    value = parse_structured(__import__("json").dumps(raw), SessionSummary)
    assert len(value.summary) == 600
    assert len(value.salient) == 5


def test_parse_structured_reports_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="emotion"):
        parse_structured('{"intensity": 0.5}', Perception)


def test_strip_role_prefix() -> None:
    assert strip_role_prefix("Counselor: How are you?") == "How are you?"
    assert strip_role_prefix("**Therapist**: Hi") == "Hi"
    assert strip_role_prefix("Hello there") == "Hello there"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"summary": "We talked about wor', {"summary": "We talked about wor"}),
        ('{"a": [1, 2', {"a": [1, 2]}),
        ('{"a": 1, "b": ', {"a": 1}),
        ('{"a": {"b": "x\\"y', {"a": {"b": 'x"y'}}),
        ('{"a": 1,', {"a": 1}),
    ],
)
def test_truncated_json_is_closed(raw: str, expected: dict) -> None:
    assert extract_json(raw) == expected
