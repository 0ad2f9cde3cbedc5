"""Held turn memories: written together with the patient's next write, recallable meanwhile."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from conftest import AppFactory
from theramind.config import Settings
from theramind.memory import HashingEmbedder, VectorMemory, build_memory


def counted(memory: VectorMemory) -> list[int]:
    """Record the number of rows of every upsert the memory's index receives."""
    sizes: list[int] = []
    real = memory.index.upsert

    def upsert(patient_id: str, ids: list[str], vectors: np.ndarray, *rest: Any) -> None:
        sizes.append(len(ids))
        real(patient_id, ids, vectors, *rest)

    memory.index.upsert = upsert  # type: ignore[method-assign]
    return sizes


def turn(memory: VectorMemory, no: int, text: str, kind: str = "disclosure") -> None:
    memory.remember_soon("p1", [(kind, text)], session_no=1, turn=no)  # type: ignore[list-item]
    memory._writer.flush("p1")  # the background write has run; the hold is what remains


def test_held_turns_are_recalled_then_written_in_one_upsert(settings: Settings) -> None:
    memory = build_memory(settings, embedder=HashingEmbedder())
    sizes = counted(memory)
    lines = ["my dog Biscuit died in spring", "the night shift wrecks my sleep", "Tom moved away"]
    for no, line in enumerate(lines, start=1):
        turn(memory, no, line)
    assert sizes == []  # nothing written yet, one upsert saved per turn
    found = memory.recall("p1", "Biscuit my dog", current_session=1)
    assert [m.text for m in found] == [lines[0]]  # a held turn is recalled like a stored one
    assert not memory.recall("p1", "Biscuit my dog", current_session=2, exclude_session=1)
    turn(memory, 4, "my dog Biscuit died in spring")  # a near-duplicate of a held turn
    assert memory.count("p1") == 3 and sizes == [3]  # a read writes the hold, in one upsert
    memory.close()


def test_a_write_that_is_not_held_takes_the_hold_along(settings: Settings) -> None:
    memory = build_memory(settings, embedder=HashingEmbedder())
    sizes = counted(memory)
    turn(memory, 1, "the garden flooded on Monday")
    turn(memory, 2, "risk low: said a hopeless thing once", kind="risk")  # never held
    assert sizes == [2]
    memory.remember_many("p1", [("summary", "a calm session about the flood")], session_no=1)
    assert sizes == [2, 1] and memory.count("p1") == 3
    memory.close()


def test_the_hold_is_bounded_in_size_and_age(settings: Settings) -> None:
    memory = build_memory(settings, embedder=HashingEmbedder())
    sizes = counted(memory)
    memory.hold_turns = 3
    for no, text in enumerate(["rain all week", "a new job offer", "the cat is ill"], start=1):
        turn(memory, no, text)
    assert sizes == [3]  # the third reached the bound
    memory.hold_s = 0.05
    turn(memory, 4, "a letter from the bank")
    deadline = time.monotonic() + 5
    while not sizes[1:] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sizes == [3, 1]  # no further turn came: the timer wrote it
    memory.close()


def test_close_and_flush_write_every_hold(settings: Settings) -> None:
    memory = build_memory(settings, embedder=HashingEmbedder())
    index = memory.index
    turn(memory, 1, "my sister visits on Sunday")
    memory.flush()
    assert index.count("p1") == 1
    turn(memory, 2, "the exam is next Friday")
    memory.close()
    assert index.count("p1") == 2
    memory.remember_soon("p1", [("disclosure", "moving house soon")], session_no=1, turn=3)
    assert index.count("p1") == 3  # after close writes run inline and are never held


def test_turns_held_by_a_process_that_died_come_back_at_close(
    make_app: AppFactory, settings: Settings
) -> None:
    memory = build_memory(settings, embedder=HashingEmbedder())
    app = make_app(memory=memory)
    session = app.start_session("p1", profile={"patient_id": "p1"})
    lines = ["The garden flooded on Monday.", "My brother Tom moved to Leeds."]
    for line in lines:
        session.respond(line)
    memory._writer.flush()
    memory._held.clear()  # as if the process died holding them
    memory._handled.clear()
    session.end()
    texts = {m.turn: m.text for m in memory.export_patient("p1") if m.kind == "disclosure"}
    assert {texts.get(1), texts.get(2)} == set(lines)


def test_a_failed_write_keeps_the_hold_for_the_next(settings: Settings, caplog: Any) -> None:
    memory = build_memory(settings, embedder=HashingEmbedder())
    real = memory.index.upsert
    calls: list[int] = []

    def flaky(*args: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("disk full")
        real(*args)

    memory.index.upsert = flaky  # type: ignore[method-assign]
    turn(memory, 1, "my dog Biscuit died in spring")
    memory.flush()  # logged, not raised; the turn stays held
    assert "disk full" in caplog.text and memory.index.count("p1") == 0
    assert [m.text for m in memory.recall("p1", "Biscuit my dog", current_session=1)]
    memory.flush()
    assert memory.index.count("p1") == 1
    memory.close()


def test_the_intake_waits_for_the_first_turns_and_is_written_with_them(
    settings: Settings,
) -> None:
    memory = build_memory(settings, embedder=HashingEmbedder())
    sizes = counted(memory)
    memory.remember_intake("p1", ["lost her job in March", "sleeps four hours a night"])
    memory.remember_intake("p1", ["lost her job in May"])  # a reseeding replaces the held one
    assert sizes == []
    found = memory.recall("p1", "her job", current_session=1)
    assert [m.text for m in found] == ["lost her job in May"]  # recalled while held
    turn(memory, 1, "the interview went badly")
    assert sizes == []
    memory.remember_many("p1", [("summary", "a session about work")], session_no=1)
    assert sizes == [3]  # intake, turn and summary: one upsert
    assert sorted(m.text for m in memory.export_patient("p1") if m.kind == "intake") == [
        "lost her job in May"
    ]
    memory.close()


def test_a_stored_intake_is_replaced_by_a_held_one(settings: Settings) -> None:
    memory = build_memory(settings, embedder=HashingEmbedder())
    memory.remember_intake("p1", ["first fact", "second fact"])
    memory.flush()
    assert memory.index.count("p1") == 2
    memory.remember_intake("p1", ["corrected fact"])
    assert memory.index.count("p1") == 0  # the old intake is gone at once, the new one held
    memory.close()
    assert [m.text for m in memory.export_patient("p1")] == ["corrected fact"]
