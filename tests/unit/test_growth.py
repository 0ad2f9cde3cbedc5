"""Bounded growth: a turn's checkpoint, a close's checkpoints and every prompt block stay the
same size however long the session or the course; closes do not redo skipped memory writes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from benchmarks.growth import many_sessions, one_session

from conftest import AppFactory
from theramind.config import Settings
from theramind.graphs import session as session_graph
from theramind.memory import HashingEmbedder, build_memory


def test_a_turns_checkpoint_is_the_same_size_at_turn_15_and_turn_75(tmp_path: Path) -> None:
    report = one_session(75, [15, 75], tmp_path)
    per_turn = report["checkpoint_bytes_per_turn"]
    # Re-checkpointing every turn made turn 75 add five times what turn 15 added.
    assert per_turn[75] < 1.5 * per_turn[15], per_turn
    # The strategist's prompt no longer lists every strategy used so far: listing them all put
    # about 1,000 characters between the early window's largest prompt (turns 16-30) and the
    # late one's (61-75). Bounded, the two differ by noise (under 100 in repeated runs).
    early = report["strategist_prompt_chars_early_max"]
    assert report["strategist_prompt_chars_late_max"] < early + 300, report


def test_a_close_checkpoints_the_same_at_session_4_and_session_16(tmp_path: Path) -> None:
    report = many_sessions(16, [4, 16], tmp_path, turns=2)
    per_session = report["checkpoint_bytes_per_session"]
    assert per_session[16] < 1.5 * per_session[4], per_session


def test_the_thread_keeps_recent_turns_and_counts_them_all(make_app: AppFactory) -> None:
    app = make_app()
    app.register_patient({"patient_id": "p-count", "presenting_problem": "stress"})
    session = app.start_session("p-count")
    for i in range(6):
        session.respond(f"Work was hard again today, day {i}.")
    values = app.session_graph.get_state(session._config).values
    assert values["turn_count"] == 6
    keep = max(1, app.settings.limits.recent_turns_in_prompt)
    assert [t["turn"] for t in values["turns"]] == list(range(7 - keep, 7))
    # Only what prompts quote is kept of each; the whole record is the store's (and `last`'s).
    assert {tuple(t) for t in values["turns"]} == {("turn", "patient_text", "reply", "strategy")}
    assert values["turns"][-1]["reply"] == values["last"]["reply"] == session.turns[-1].reply
    assert len(values["used"]) == 6
    assert [t.turn for t in session.turns] == [1, 2, 3, 4, 5, 6]


def test_a_thread_from_before_the_count_still_numbers_turns_right() -> None:
    old = {"turns": [{"turn": 1}, {"turn": 2}]}
    assert session_graph.turn_count(old) == 2
    assert session_graph.turn_count({"turns": [{"turn": 9}], "turn_count": 9}) == 9
    assert session_graph.recent_kept([{"t": 1}], {"add": [{"t": 2}], "keep": 1}) == [{"t": 2}]


class CountingEmbedder(HashingEmbedder):
    """A hashing embedder that counts the texts it embeds."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.count += len(texts)
        return super().embed(texts)


def test_close_does_not_embed_again_the_turns_skipped_as_duplicates(settings: Settings) -> None:
    embedder = CountingEmbedder()
    memory = build_memory(settings, embedder=embedder)
    said = [(turn, "I can't sleep, I can't sleep at all.") for turn in range(1, 31)]
    for turn, text in said:
        memory.remember_soon("p-dup", [("disclosure", text)], session_no=1, turn=turn)
    memory.export_patient("p-dup")  # waits for the queued writes
    written = embedder.count
    assert memory.backfill_turns("p-dup", 1, said) == 0
    assert embedder.count == written, "the close embedded turns memory had already handled"
    memory.close()


def test_close_still_restores_a_turn_whose_write_was_lost(settings: Settings) -> None:
    memory = build_memory(settings, embedder=HashingEmbedder())
    memory.remember_soon("p-lost", [("disclosure", "First I lost my job.")], session_no=1, turn=1)
    said = [(1, "First I lost my job."), (2, "Then my cat got sick and the car broke.")]
    assert memory.backfill_turns("p-lost", 1, said) == 1
    memory.close()
