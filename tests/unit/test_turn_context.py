"""The typed view a node reads of a turn: only what prompts quote is read back each turn."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
from langgraph.runtime import Runtime
from pydantic import ValidationError

from theramind.agents.base import format_recent, recent_messages
from theramind.config import LimitSettings
from theramind.graphs.context import TurnContext


def context(turns: list[dict[str, Any]], window: int) -> TurnContext:
    """A node's context over a thread holding `turns`, quoting `window` of them."""
    services = SimpleNamespace(
        settings=SimpleNamespace(limits=LimitSettings(recent_turns_in_prompt=window))
    )
    counsel = SimpleNamespace(resolve=lambda: services, patient_id="p1", session_no=1)
    runtime = cast(Runtime[Any], SimpleNamespace(context=counsel))
    return TurnContext({"message": "hello", "turns": turns}, runtime)


def stored(n: int) -> dict[str, Any]:
    """A turn as a thread keeps it, with the fields a prompt never quotes."""
    return {
        "patient_id": "p1",
        "turn": n,
        "patient_text": f"patient {n}",
        "reply": f"counselor {n}",
        "perception": {"primary_emotion": "sadness"},
        "calls": [{"role": "counselor"}],
    }


def test_only_the_quoted_turns_are_read_and_only_their_words() -> None:
    turns = [stored(n) for n in range(1, 7)]
    turns[0]["reply"] = None  # an old turn outside the window is not read at all
    recent = context(turns, window=3).recent
    assert [(t.patient_text, t.reply) for t in recent] == [
        (f"patient {n}", f"counselor {n}") for n in (4, 5, 6)
    ]
    assert format_recent(recent, 3).splitlines()[0].endswith("patient 4")
    assert [m["role"] for m in recent_messages(recent, 2)] == ["user", "assistant"] * 2
    assert context(turns, window=0).recent == []


def test_a_quoted_turn_without_its_words_is_refused() -> None:
    turns = [stored(1), {**stored(2), "reply": 7}]
    with pytest.raises(ValidationError):
        _ = context(turns, window=3).recent
