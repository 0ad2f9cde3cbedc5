"""Memory off the reply path: ordered background writes, reads that wait, one embedding a turn."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from conftest import AppFactory
from theramind.config import Settings
from theramind.errors import InputError, MemoryScopeError
from theramind.memory import HashingEmbedder, VectorMemory, build_memory
from theramind.memory.embeddings import VectorCache
from theramind.memory.writer import BackgroundWriter


class CountingEmbedder(HashingEmbedder):
    """A hashing embedder that records every text it embeds."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.seen.extend(texts)
        return super().embed(texts)


class GatedEmbedder(HashingEmbedder):
    """A hashing embedder that blocks until `gate` is set, to hold a write in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.gate.wait(5)
        return super().embed(texts)


def test_writer_runs_in_order_and_flush_waits() -> None:
    writer = BackgroundWriter()
    done: list[int] = []
    for i in range(20):
        writer.submit("a", lambda i=i: (time.sleep(0.001), done.append(i)))
    writer.flush("a")
    assert done == list(range(20)) and writer.pending() == 0
    writer.close()
    writer.submit("a", lambda: done.append(99))  # after close: runs inline, nothing lost
    assert done[-1] == 99


def test_writer_logs_a_failed_write_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    writer = BackgroundWriter()
    done: list[str] = []

    def boom() -> None:
        raise RuntimeError("disk full")

    writer.submit("a", boom)
    writer.submit("a", lambda: done.append("after"))
    writer.close()
    assert done == ["after"]
    assert "disk full" in caplog.text


def test_cache_embeds_each_text_once_and_stays_bounded() -> None:
    embedder = CountingEmbedder()
    cache = VectorCache(size=3)
    first = cache.embed(embedder, ["a b", "c d", "a b"])
    assert embedder.seen == ["a b", "c d"]
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_array_equal(cache.embed(embedder, ["c d"])[0], first[1])
    assert embedder.seen == ["a b", "c d"]
    cache.embed(embedder, ["e f", "g h", "i j"])  # pushes the older ones out
    cache.embed(embedder, ["a b"])
    assert embedder.seen.count("a b") == 2


def test_reads_wait_for_queued_writes(settings: Settings) -> None:
    embedder = GatedEmbedder()
    memory = VectorMemory(build_memory(settings).index, embedder, settings.memory)
    memory.remember_soon("p1", [("disclosure", "my dog Biscuit died")], session_no=1, turn=1)
    assert memory._writer.pending("p1") == 1  # held in flight by the gate
    threading.Timer(0.2, embedder.gate.set).start()
    assert memory.count("p1") == 1  # waited for the write instead of reading around it
    found = memory.recall("p1", "Biscuit my dog", current_session=2)
    assert [m.text for m in found] == ["my dog Biscuit died"]
    memory.close()


def test_remember_soon_checks_its_input_at_once(settings: Settings) -> None:
    memory = build_memory(settings, embedder=HashingEmbedder())
    with pytest.raises(MemoryScopeError):
        memory.remember_soon("", [("disclosure", "text")], session_no=1)
    with pytest.raises(InputError):
        memory.remember_soon("p1", [("gossip", "text")], session_no=1)  # type: ignore[list-item]
    with pytest.raises(InputError):
        memory.remember_soon("p1", [("disclosure", "  ")], session_no=1)
    memory.close()


def test_a_turn_embeds_the_patient_message_once(make_app: AppFactory, settings: Settings) -> None:
    embedder = CountingEmbedder()
    app = make_app(memory=build_memory(settings, embedder=embedder))
    session = app.start_session(
        "p1", profile={"patient_id": "p1", "presenting_problem": "Panic on buses."}
    )
    message = "My heart raced on the bus again this morning."
    session.respond(message)
    app.services.memory.flush()
    assert embedder.seen.count(message) == 1
    record = session.respond("It happened in the shop too.").record
    app.services.memory.flush()
    # The message of turn 1 is stored, yet skipped while the prompt still quotes it.
    assert all(m.turn != 1 for m in record.recalled if m.session_no == 1)
    focus = session.plan.focus
    assert focus and embedder.seen.count(focus) == 1  # the focus: once per session


def test_recall_leans_toward_the_focus(settings: Settings) -> None:
    memory = build_memory(settings, embedder=HashingEmbedder())
    memory.remember_many(
        "p1",
        [("disclosure", "kept the sleep diary every night"), ("disclosure", "sister phoned")],
        session_no=1,
    )
    assert memory.recall("p1", "I am tired", current_session=2) == []
    found = memory.recall("p1", "I am tired", current_session=2, focus="review the sleep diary")
    assert [m.text for m in found] == ["kept the sleep diary every night"]
    leaning = memory.query_vector("I am tired", "review the sleep diary")
    assert np.isclose(float(np.linalg.norm(leaning)), 1.0)
    memory.close()


def test_a_lost_turn_write_is_restored_when_the_session_closes(
    make_app: AppFactory, settings: Settings
) -> None:
    memory = build_memory(settings, embedder=HashingEmbedder())
    app = make_app(memory=memory)
    session = app.start_session("p1", profile={"patient_id": "p1"})
    real = memory.remember_soon

    def lose_turn_two(patient_id: str, entries: Any, *, session_no: int, turn: Any = None) -> None:
        if turn != 2:  # as if the process died before turn 2's write ran
            real(patient_id, entries, session_no=session_no, turn=turn)

    memory.remember_soon = lose_turn_two  # type: ignore[method-assign]
    lines = ["The garden flooded on Monday.", "My brother Tom moved to Leeds.", "Work is calm."]
    for line in lines:
        session.respond(line)

    def turns_in_memory() -> dict[int, str]:
        return {
            m.turn: m.text
            for m in memory.export_patient("p1")
            if m.kind == "disclosure" and m.turn is not None
        }

    assert turns_in_memory() == {1: lines[0], 3: lines[2]}
    session.end()
    assert turns_in_memory() == {1: lines[0], 2: lines[1], 3: lines[2]}
    assert memory.backfill_turns("p1", 1, list(enumerate(lines, start=1))) == 0  # nothing twice
