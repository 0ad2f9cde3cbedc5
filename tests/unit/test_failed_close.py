"""A close that fails part-way resumes over every stored turn, and takes no turn meanwhile."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import AppFactory
from scripted import scripted_backend
from theramind import SessionClosedError
from theramind.agents import strategist
from theramind.llm import ScriptedBackend


class CloseFailed(RuntimeError):
    """Raised by the patched close step."""


@pytest.fixture
def fail_decision_once(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Make `decide_therapy` raise on its first call only."""
    real = strategist.decide_therapy
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise CloseFailed("decision step crashed")
        return real(*args, **kwargs)

    monkeypatch.setattr(strategist, "decide_therapy", flaky)
    return calls


def _summarized(backend: ScriptedBackend) -> str:
    """The transcript the last session summary was written from."""
    summaries = [c for c in backend.calls if c.schema_name == "SessionSummary"]
    return summaries[-1].messages[-1]["content"]


def test_a_failed_close_takes_no_more_turns_and_resumes(
    make_app: AppFactory, profile: dict, fail_decision_once: dict[str, int]
) -> None:
    backend = scripted_backend()
    app = make_app(backend)
    session = app.start_session("p1", profile=profile)
    for text in ("first worry", "second worry", "third worry"):
        session.respond(text)
    with pytest.raises(CloseFailed):
        session.end()
    assert session.status == "closing"
    with pytest.raises(SessionClosedError, match="call end"):
        session.respond("a fourth thing after the failed close")
    assert len(session.turns) == 3
    outcome = session.end()
    assert fail_decision_once["n"] == 2 and session.status == "closed"
    transcript = _summarized(backend)
    assert all(w in transcript for w in ("first worry", "second worry", "third worry"))
    assert outcome.session_no == 1
    assert app.start_session("p1").session_no == 2


def test_a_close_snapshot_older_than_the_turns_is_redone(
    make_app: AppFactory, profile: dict, fail_decision_once: dict[str, int]
) -> None:
    backend = scripted_backend()
    app = make_app(backend)
    session = app.start_session("p1", profile=profile)
    for text in ("first worry", "second worry", "third worry"):
        session.respond(text)
    with pytest.raises(CloseFailed):
        session.end()
    # A store written before closes locked the session: it was left open for more turns.
    app.services.store.set_status("p1", 1, "open")
    session.respond("fourth worry")
    session.respond("fifth worry")
    efficacy_before = sum(c.schema_name == "EfficacyVerdict" for c in backend.calls)
    session.end()
    transcript = _summarized(backend)
    assert all(f"{n} worry" in transcript for n in ("first", "third", "fourth", "fifth"))
    efficacy = [c for c in backend.calls if c.schema_name == "EfficacyVerdict"]
    assert len(efficacy) == efficacy_before + 1  # the efficacy was judged again, over 5 turns
    assert "fifth worry" in efficacy[-1].messages[-1]["content"]
