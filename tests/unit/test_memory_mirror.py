"""The embedded chroma index's in-process copy: the same answers as chroma, fewer chroma calls,
and other writers' changes seen within the copy's time to live."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chromadb.api.models.Collection import Collection

from theramind.config import MemorySettings
from theramind.memory import HashingEmbedder
from theramind.memory.scope import Scope
from theramind.memory.store import ChromaIndex, make_client

EMBEDDER = HashingEmbedder()
TEXTS = [
    "my sister called and we argued about the holidays",
    "I could not sleep before the exam on Monday",
    "work has been calmer since the new manager started",
    "I went running twice this week and felt lighter",
    "my father is in hospital and I am scared to visit",
    "the rent went up again and money is tight",
]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count the chroma collection calls this process makes."""
    counted: Counter[str] = Counter()
    for name in ("query", "get", "count", "upsert", "delete"):
        original = getattr(Collection, name)

        def wrapper(
            self: Collection, *a: Any, _name: str = name, _orig: Any = original, **k: Any
        ) -> Any:
            counted[_name] += 1
            return _orig(self, *a, **k)

        monkeypatch.setattr(Collection, name, wrapper)
    return counted


def index_at(path: Path, *, mirror: bool | None = None) -> ChromaIndex:
    """An embedded index at `path` (a second one at the same path stands for another writer)."""
    client = make_client(MemorySettings(path=str(path)), path)
    return ChromaIndex(client, EMBEDDER, path, mirror=mirror)


def fill(index: ChromaIndex, patient: str, texts: list[str], session_no: int = 1) -> None:
    """Upsert `texts` for `patient`, one document each, keyed by position."""
    index.upsert(
        patient,
        [f"disclosure/{patient}-{session_no}-{i}" for i in range(len(texts))],
        EMBEDDER.embed(texts),
        texts,
        [
            {"patient_id": patient, "kind": "disclosure", "session_no": session_no, "turn": i}
            for i in range(len(texts))
        ],
    )


def ranked(hits: list[Any]) -> tuple[list[tuple[str, float]], list[float]]:
    """The hits that share words with the query, in order, and every similarity (ties at zero
    may come in any order)."""
    sims = [round(h.similarity, 4) for h in hits]
    return [(h.id, s) for h, s in zip(hits, sims, strict=True) if s > 0], sims


@pytest.fixture
def path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "chroma"


def test_the_copy_answers_as_chroma_does(path: Path) -> None:
    copied, direct = index_at(path, mirror=True), index_at(path, mirror=False)
    fill(copied, "p1", TEXTS)
    fill(copied, "p2", ["my sister visited the hospital with me"])
    queries = EMBEDDER.embed(["sister holidays argument", "hospital father visit", "money"])
    for where in (
        Scope("p1").where(),
        Scope("p1").where(exclude_session=2),
        Scope("p1", "disclosure").where(from_session=1),
    ):
        got = copied.query_many("p1", queries, where, 4)
        want = direct.query_many("p1", queries, where, 4)
        assert [ranked(g) for g in got] == [ranked(w) for w in want]
        assert all(h.metadata["patient_id"] == "p1" for g in got for h in g)
    assert sorted(h.id for h in copied.get("p1", Scope("p1").where())) == sorted(
        h.id for h in direct.get("p1", Scope("p1").where())
    )


def test_reads_within_the_time_to_live_make_no_chroma_call(path: Path, calls: Counter[str]) -> None:
    index = index_at(path)
    fill(index, "p1", TEXTS[:3])
    index.query("p1", EMBEDDER.embed(["exam"]), Scope("p1").where(), 4)  # loads the copy
    calls.clear()
    for _ in range(5):
        hits = index.query("p1", EMBEDDER.embed(["exam sleep"]), Scope("p1").where(), 2)
        assert hits[0].text == TEXTS[1]
    assert index.get("p1", Scope("p1").where(key="x")) == []
    fill(index, "p1", TEXTS[3:], session_no=2)  # its own write goes into the copy
    found = index.query("p1", EMBEDDER.embed(["rent money tight"]), Scope("p1").where(), 1)
    assert found[0].text == TEXTS[5]
    assert calls == Counter({"upsert": 1})
    # A patient with no collection is looked up once, then known missing for the same time.
    calls.clear()
    for _ in range(3):
        assert index.query("nobody", EMBEDDER.embed(["exam"]), Scope("nobody").where(), 4) == []
    assert sum(calls.values()) == 0


def test_another_writer_is_seen_once_the_copy_expires(path: Path) -> None:
    here, other = index_at(path), index_at(path)
    assert here._mirror is not None
    here._mirror.ttl_s = 0.2
    fill(here, "p1", TEXTS[:2])
    query = EMBEDDER.embed(["rent money"])
    assert all(h.text != TEXTS[5] for h in here.query("p1", query, Scope("p1").where(), 4))
    fill(other, "p1", [TEXTS[5]], session_no=2)
    time.sleep(0.25)
    assert here.query("p1", query, Scope("p1").where(), 1)[0].text == TEXTS[5]
    # An erasure elsewhere: the copy goes with the collection.
    assert other.drop("p1") == 3
    time.sleep(0.25)
    assert here.query("p1", query, Scope("p1").where(), 4) == []
    assert here.get("p1", Scope("p1").where()) == []


def test_an_erasure_finds_a_collection_created_elsewhere_meanwhile(path: Path) -> None:
    here, other = index_at(path), index_at(path)
    assert here.query("p1", EMBEDDER.embed(["x"]), Scope("p1").where(), 4) == []  # missing
    fill(other, "p1", TEXTS[:2])
    assert here.delete("p1", Scope("p1").where()) == 2
    fill(other, "p1", TEXTS[:3])
    assert here.drop("p1") == 3
    assert other.count("p1") == 0


def test_a_large_collection_is_searched_in_chroma(path: Path, calls: Counter[str]) -> None:
    index = index_at(path)
    assert index._mirror is not None
    index._mirror.patient_rows = 4
    fill(index, "p1", TEXTS)
    calls.clear()
    for _ in range(3):
        hits = index.query("p1", EMBEDDER.embed(["father hospital"]), Scope("p1").where(), 1)
        assert hits[0].text == TEXTS[4]
    assert calls["query"] == 3
    assert calls["get"] == 1  # then known too large for the copy's time to live


def test_copies_are_bounded_least_recently_read_out(path: Path) -> None:
    index = index_at(path)
    assert index._mirror is not None
    index._mirror.rows = 8
    vector = EMBEDDER.embed(["exam"])
    for patient in ("p1", "p2", "p3"):
        fill(index, patient, TEXTS[:3])
        index.query(patient, vector, Scope(patient).where(), 1)
    assert index._mirror.copied() == ["p2", "p3"]
    hits = index.query("p1", vector, Scope("p1").where(), 3)  # reloaded from chroma
    assert sorted(h.text for h in hits) == sorted(TEXTS[:3])
    assert index._mirror.copied() == ["p3", "p1"]
