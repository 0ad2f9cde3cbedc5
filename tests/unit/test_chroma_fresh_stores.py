"""New embedded stores start from a copy of an empty one: same behaviour, no second migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from theramind.config import MemorySettings
from theramind.memory import HashingEmbedder
from theramind.memory import store as store_module
from theramind.memory.chroma_files import DATABASE, FreshStores
from theramind.memory.store import ChromaIndex, make_client

EMBEDDER = HashingEmbedder()
TEXTS = ["my sister called about the holidays", "I could not sleep before the exam"]


@pytest.fixture
def stores(monkeypatch: pytest.MonkeyPatch) -> FreshStores:
    """A template holder of this test alone, used by `make_client`."""
    fresh = FreshStores()
    monkeypatch.setattr(store_module, "fresh_stores", fresh)
    return fresh


def open_index(path: Path) -> ChromaIndex:
    return ChromaIndex(make_client(MemorySettings(path=str(path)), path), EMBEDDER, path)


def fill_and_query(index: ChromaIndex, patient: str) -> list[str]:
    index.upsert(
        patient,
        [f"disclosure/{patient}-{i}" for i in range(len(TEXTS))],
        EMBEDDER.embed(TEXTS),
        TEXTS,
        [{"patient_id": patient, "kind": "disclosure"} for _ in TEXTS],
    )
    hits = index.query(patient, EMBEDDER.embed([TEXTS[1]])[0], {"patient_id": patient}, 1)
    return [h.text for h in hits]


def migrations(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM migrations").fetchone()[0])
    finally:
        conn.close()


def test_a_second_store_is_seeded_from_the_first_and_works_alike(
    stores: FreshStores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded: list[Path] = []
    seed = stores.seed
    monkeypatch.setattr(stores, "seed", lambda root: seed(root) and not seeded.append(root))
    first = open_index(tmp_path / "a")
    assert seeded == []  # nothing to copy yet: chroma created the first one itself
    assert fill_and_query(first, "p1") == [TEXTS[1]]
    second = open_index(tmp_path / "b")
    assert seeded == [tmp_path / "b"]
    assert migrations(tmp_path / "b" / DATABASE) == migrations(tmp_path / "a" / DATABASE) > 0
    assert fill_and_query(second, "p2") == [TEXTS[1]]
    # Each store holds only its own patient, also when opened again by another client.
    second.close()
    again = open_index(tmp_path / "b")
    assert again.count("p2") == 2
    assert again.count("p1") == 0
    assert not list((tmp_path / "b").glob("*.part"))


def test_the_template_is_taken_from_an_empty_store_only(
    stores: FreshStores, tmp_path: Path
) -> None:
    full = open_index(tmp_path / "full")
    fill_and_query(full, "p1")
    stores.learn(tmp_path / "full")  # holds a collection now: not a template
    target = tmp_path / "new"
    target.mkdir()
    assert stores._template is not None  # learnt when "full" was still empty
    assert stores.seed(target)
    conn = sqlite3.connect(target / DATABASE)
    try:
        assert conn.execute("SELECT COUNT(*) FROM collections").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 0
    finally:
        conn.close()


def test_an_existing_database_is_never_replaced(stores: FreshStores, tmp_path: Path) -> None:
    open_index(tmp_path / "a")
    existing = tmp_path / "b"
    existing.mkdir()
    (existing / DATABASE).write_bytes(b"someone else's")
    assert not stores.seed(existing)
    assert (existing / DATABASE).read_bytes() == b"someone else's"
    assert not FreshStores().seed(tmp_path / "c")  # no template yet: nothing written
    assert not (tmp_path / "c").exists()
