"""A graph client (as under `langgraph dev`) starts a session itself, or is told how to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver

from conftest import AppFactory
from theramind import TheraMind
from theramind.errors import InputError, SessionStateError, UnknownPatientError
from theramind.graphs import course, session
from theramind.services import CounselContext


@dataclass
class Served:
    """Both graphs compiled over one checkpointer, as a graph server runs them."""

    app: TheraMind
    saver: InMemorySaver = field(default_factory=InMemorySaver)

    def turn(self, thread: str, context: CounselContext, text: str) -> dict[str, Any]:
        graph = session.builder.compile(checkpointer=self.saver)
        config: RunnableConfig = {"configurable": {"thread_id": thread}}
        return graph.invoke({"message": text}, config, context=context)

    def close(self, thread: str, context: CounselContext) -> dict[str, Any]:
        graph = course.builder.compile(checkpointer=self.saver)
        config: RunnableConfig = {"configurable": {"thread_id": thread}}
        return graph.invoke({}, config, context=context)

    def context(self, patient_id: str, session_no: int, **extra: Any) -> CounselContext:
        return CounselContext(patient_id, session_no, services=self.app.services, **extra)


@pytest.fixture
def served(make_app: AppFactory) -> Served:
    return Served(make_app())


def test_a_first_turn_with_a_profile_registers_the_patient_and_starts_session_one(
    served: Served, profile: dict
) -> None:
    app = served.app
    first = served.turn("t1", served.context("p1", 1, profile=profile), "Work is relentless.")
    assert first["last"]["turn"] == 1 and first["last"]["reply"].strip()
    assert app.patient("p1").pseudonym == profile["pseudonym"]
    plan = app.services.store.plan("p1", 1)
    assert plan.opening and plan.last_action == "start"
    second = served.turn("t1", served.context("p1", 1), "Still tired.")
    assert second["last"]["turn"] == 2
    assert served.close("t1:close", served.context("p1", 1))["outcome"]["session_no"] == 1
    assert app.services.store.session_status("p1", 1) == "closed"
    nxt = served.turn("t2", served.context("p1", 2), "Hello again.")
    assert nxt["last"]["session_no"] == 2
    assert app.services.store.plan("p1", 2).last_action is not None


def test_an_unknown_patient_without_a_profile_is_told_to_send_one(served: Served) -> None:
    with pytest.raises(UnknownPatientError, match="send their profile with the first turn"):
        served.turn("t1", served.context("nobody", 1), "Hi.")
    assert not served.app.services.store.has_patient("nobody")


def test_a_wrong_session_number_names_the_one_to_send(served: Served, profile: dict) -> None:
    served.app.register_patient(profile)
    with pytest.raises(SessionStateError, match="send session_no=1"):
        served.turn("t1", served.context("p1", 3), "Hi.")
    served.app.start_session("p1")
    with pytest.raises(SessionStateError, match="session 1 is still open: send session_no=1"):
        served.turn("t2", served.context("p1", 2), "Hi.")
    assert isinstance(SessionStateError("x"), RuntimeError)  # shown by langgraph's server


def test_a_profile_for_another_patient_is_refused(served: Served, profile: dict) -> None:
    with pytest.raises(InputError, match="does not match"):
        served.turn("t1", served.context("p2", 1, profile=profile), "Hi.")
    assert not served.app.services.store.has_patient("p2")
