"""The patient store on SQLite and on PostgreSQL: migrations, concurrent writers, settings."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import AppFactory
from theramind import SessionBusyError, load_config
from theramind.checkpoints import checkpoint_saver
from theramind.config import ROLES, ModelSpec, Settings
from theramind.errors import ConfigError
from theramind.records import PatientProfile, Perception, SessionPlan, TurnRecord
from theramind.storage import PatientStore
from theramind.storage_db import Database, PostgresDatabase, SqliteDatabase
from theramind.storage_migrations import LATEST, MIGRATIONS, Migration, migrate, schema_version

BOTH = pytest.mark.parametrize("storage_backend", ["sqlite", "postgres"], indirect=True)
MODELS = {"counselor": "scripted", "patient": "scripted", "judge": "scripted"}


@pytest.fixture
def location(storage: dict[str, str]) -> str:
    """Where the test's store lives: a SQLite file, or a fresh Postgres database."""
    return storage.get("url") or str(Path(storage["home"]) / "theramind.sqlite")


@pytest.fixture
def open_store(location: str) -> Iterator[Callable[[], PatientStore]]:
    """Open stores on the test's database (each its own connection), closed afterwards."""
    stores: list[PatientStore] = []

    def factory() -> PatientStore:
        stores.append(PatientStore(location))
        return stores[-1]

    yield factory
    for store in stores:
        store.close()


def _database(location: str) -> Database:
    if location.startswith("postgresql://"):
        return PostgresDatabase(location)
    return SqliteDatabase(location)


def _versions(store: PatientStore) -> list[int]:
    return [int(r[0]) for r in store._all("SELECT version FROM schema_migrations ORDER BY 1")]


def _turn(pid: str, no: int, turn: int, text: str) -> TurnRecord:
    return TurnRecord(
        patient_id=pid,
        session_no=no,
        turn=turn,
        patient_text=text,
        reply="I hear you.",
        perception=Perception(
            emotion="fear",
            intensity=0.4,
            attitude="positive",
            resistance=False,
            topic_deviation=False,
            wants_to_end=False,
            risk_level="none",
        ),
        strategy="restatement",
        therapies=["cbt"],
        phase="assessment",
    )


def _session(store: PatientStore, pid: str = "p1") -> None:
    store.upsert_patient(PatientProfile(patient_id=pid))
    store.create_session(
        SessionPlan(patient_id=pid, session_no=1, therapies=["cbt"], phase="assessment")
    )


# -- migrations ---------------------------------------------------------------------------------


def test_a_store_file_from_before_migrations_upgrades_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    for statement in MIGRATIONS[0].sqlite:  # exactly the tables such a file has
        old.execute(statement)
    profile = PatientProfile(patient_id="p1", pseudonym="Sam")
    plan = SessionPlan(patient_id="p1", session_no=1, therapies=["cbt"], phase="assessment")
    old.execute(
        "INSERT INTO patients VALUES (?, ?, ?)", ("p1", profile.model_dump_json(), "2026-01-01")
    )
    old.execute(
        "INSERT INTO sessions (patient_id, session_no, status, plan, started_at) "
        "VALUES ('p1', 1, 'open', ?, '2026-01-01')",
        (plan.model_dump_json(),),
    )
    old.execute(
        "INSERT INTO turns VALUES ('p1', 1, 1, ?)",
        (_turn("p1", 1, 1, "before the upgrade").model_dump_json(),),
    )
    old.commit()
    old.close()

    store = PatientStore(path)
    try:
        assert _versions(store) == [m.version for m in MIGRATIONS]
        indexes = [r[0] for r in store._all("SELECT name FROM sqlite_master WHERE type='index'")]
        assert "risk_events_by_session" in indexes
        assert store.patient("p1").pseudonym == "Sam"
        assert [t.patient_text for t in store.turns("p1", 1)] == ["before the upgrade"]
        store.add_turn(_turn("p1", 1, 2, "after it"))
        assert [t.turn for t in store.turns("p1", 1)] == [1, 2]
    finally:
        store.close()
    assert migrate(SqliteDatabase(path)) == []  # once upgraded, nothing is left to apply


@BOTH
def test_a_new_store_has_every_step_once(open_store: Callable[[], PatientStore]) -> None:
    store = open_store()
    assert _versions(store) == list(range(1, LATEST + 1))
    assert migrate(store.db) == []
    assert _versions(open_store()) == list(range(1, LATEST + 1))


@BOTH
def test_workers_opening_a_new_database_together_migrate_it_once(location: str) -> None:
    stores: list[PatientStore] = []
    errors: list[BaseException] = []
    gate = threading.Barrier(4)

    def opener() -> None:
        gate.wait()
        try:
            stores.append(PatientStore(location))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert _versions(stores[0]) == list(range(1, LATEST + 1))
    finally:
        for store in stores:
            store.close()


@BOTH
def test_a_database_newer_than_this_code_is_refused(
    open_store: Callable[[], PatientStore],
) -> None:
    store = open_store()
    with store.transaction() as db:
        db.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (LATEST + 7, "future", "2030"))
    with pytest.raises(ConfigError, match="upgrade TheraMind"):
        open_store()


@BOTH
def test_a_failing_step_leaves_the_schema_as_it_was(location: str) -> None:
    database = _database(location)
    try:
        migrate(database)
        extra = ("CREATE TABLE extra (x INTEGER)",)
        typo = ("CREATE TABL oops (x)",)
        broken = (
            *MIGRATIONS,
            Migration(LATEST + 1, "add a table", extra, extra),
            Migration(LATEST + 2, "a typo", typo, typo),
        )
        with pytest.raises(Exception, match=r"(?i)syntax"):
            migrate(database, broken)
        assert schema_version(database) == LATEST
        assert database.one("SELECT 1 FROM schema_migrations WHERE version = ?", LATEST + 1) is None
        with pytest.raises(Exception, match=r"(?i)extra"):
            database.one("SELECT x FROM extra")
    finally:
        database.close()


# -- writers ------------------------------------------------------------------------------------


def _race(count: int, action: Callable[[int], Any]) -> list[Any]:
    """Run `action(i)` on `count` threads released together; return results or errors."""
    results: list[Any] = [None] * count
    gate = threading.Barrier(count)

    def run(i: int) -> None:
        gate.wait()
        try:
            results[i] = action(i)
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@BOTH
def test_racing_writers_of_one_turn_store_it_once_and_the_rest_are_refused(
    open_store: Callable[[], PatientStore],
) -> None:
    stores = [open_store() for _ in range(4)]
    _session(stores[0])
    for turn in (1, 2, 3):
        results = _race(4, lambda i, t=turn: stores[i].add_turn(_turn("p1", 1, t, f"w{i} {t}")))
        assert sum(r is None for r in results) == 1, results
        assert all(isinstance(r, SessionBusyError) for r in results if r is not None), results
    turns = stores[0].turns("p1", 1)
    assert [t.turn for t in turns] == [1, 2, 3]


@BOTH
def test_racing_takers_of_one_lease_leave_one_holder(
    open_store: Callable[[], PatientStore],
) -> None:
    stores = [open_store() for _ in range(4)]
    _session(stores[0])
    results = _race(4, lambda i: stores[i].acquire_lease("p1", 1, f"host:1:{i}", ttl_s=60))
    winners = [i for i, r in enumerate(results) if r is True]
    assert len(winners) == 1, results
    assert all(isinstance(r, SessionBusyError) for r in results if r is not True), results
    assert stores[0].lease_owner("p1", 1) == f"host:1:{winners[0]}"
    with pytest.raises(SessionBusyError):
        stores[1].add_turn(_turn("p1", 1, 1, "not the holder"), owner="host:1:other")
    assert stores[2].turns("p1", 1) == []


@BOTH
def test_racing_starts_of_a_session_open_it_once(
    open_store: Callable[[], PatientStore],
) -> None:
    stores = [open_store() for _ in range(4)]
    stores[0].upsert_patient(PatientProfile(patient_id="p1"))
    plan = SessionPlan(patient_id="p1", session_no=1, therapies=["cbt"], phase="assessment")
    results = _race(4, lambda i: stores[i].create_session(plan, owner=f"host:1:{i}"))
    assert sum(r is None for r in results) == 1, results
    assert all(isinstance(r, SessionBusyError) for r in results if r is not None), results
    assert stores[0].open_session("p1") == (1, "open")


@BOTH
def test_patients_of_different_writers_stay_apart(
    open_store: Callable[[], PatientStore],
) -> None:
    stores = [open_store() for _ in range(3)]
    for i, store in enumerate(stores):
        _session(store, f"p{i}")

    def write(i: int) -> None:
        for turn in range(1, 6):
            stores[i].add_turn(_turn(f"p{i}", 1, turn, f"p{i} said {turn}"))

    assert _race(3, write) == [None, None, None]
    for i in range(3):
        texts = [t.patient_text for t in stores[(i + 1) % 3].turns(f"p{i}", 1)]
        assert texts == [f"p{i} said {n}" for n in range(1, 6)]


# -- the app on postgres ------------------------------------------------------------------------


@pytest.mark.parametrize("storage_backend", ["postgres"], indirect=True)
def test_erasing_a_patient_on_postgres_leaves_no_row_of_theirs(
    make_app: AppFactory, profile: dict, postgres_url: str
) -> None:
    import psycopg

    app = make_app()
    assert app.services.store.backend == "postgres"
    for pid in ("p1", "kept"):
        session = app.start_session(pid, profile={**profile, "patient_id": pid})
        session.respond(f"{pid} violet harbour")
        session.end()
    app.delete_patient("p1")
    with psycopg.connect(postgres_url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        ]
        assert {"patients", "turns", "checkpoints", "checkpoint_writes"} <= set(tables)
        found = {}
        for table in tables:
            row = conn.execute(
                f'SELECT count(*) FROM "{table}" t WHERE t::text LIKE %s', ("%p1%",)
            ).fetchone()
            kept = conn.execute(
                f'SELECT count(*) FROM "{table}" t WHERE t::text LIKE %s', ("%kept%",)
            ).fetchone()
            found[table] = (row[0] if row else 0, kept[0] if kept else 0)
    assert all(gone == 0 for gone, _ in found.values()), found
    assert found["turns"][1] == 1 and found["checkpoints"][1] > 0
    assert app.services.store.patients() == ["kept"]


def test_an_unreachable_postgres_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot reach the patient store"):
        PatientStore("postgresql://theramind:secret@127.0.0.1:1/theramind")
    try:
        PatientStore("postgresql://theramind:secret@127.0.0.1:1/theramind")
    except ConfigError as exc:
        assert "secret" not in str(exc)


# -- settings -----------------------------------------------------------------------------------


def test_the_postgres_backend_brings_its_checkpoints_along() -> None:
    url = "postgresql://theramind:pw@db.internal:5432/theramind"
    storage = load_config(None, models=MODELS, storage={"backend": "postgres", "url": url}).storage
    assert storage.backend == "postgres" and storage.checkpointer == "postgres"
    assert storage.checkpoint_url == url
    assert load_config(None, models=MODELS).storage.checkpointer == "sqlite"


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ({"backend": "postgres"}, "needs storage.url"),
        ({"backend": "postgres", "url": "mysql://db/x"}, "not a PostgreSQL URL"),
        ({"backend": "postgres", "url": "postgresql://u:pw@db:port/x"}, "port"),
        ({"url": "postgresql://db/x"}, "backend is sqlite"),
        ({"checkpointer": "postgres"}, "needs a database"),
        (
            {"backend": "postgres", "url": "postgresql://db/x", "checkpointer": "sqlite"},
            "workers sharing",
        ),
    ],
)
def test_a_wrong_storage_setting_says_what_to_fix(storage: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(None, models=MODELS, storage=storage)
    assert ":pw@" not in str(caught.value)


@pytest.mark.parametrize("host", ["http://chroma:8000", "chroma:8000", "chroma/x", " "])
def test_a_memory_server_host_must_be_a_bare_name(host: str) -> None:
    with pytest.raises(ConfigError, match="bare host name"):
        load_config(None, models=MODELS, memory={"host": host})


def test_shown_settings_and_run_snapshots_hide_the_database_password() -> None:
    from theramind.settings_view import render
    from theramind.simulation.experiment import public_settings

    url = "postgresql://theramind:hunter2x@db.internal:5432/theramind"
    settings = load_config(None, models=MODELS, storage={"backend": "postgres", "url": url})
    shown = render(settings)
    assert "hunter2x" not in shown and "theramind:***@db.internal:5432/theramind" in shown
    assert "hunter2x" not in str(public_settings(settings))
    assert settings.storage.url == url  # only the views are masked


@pytest.mark.parametrize("storage_backend", ["postgres"], indirect=True)
def test_a_dropped_postgres_connection_is_replaced(
    open_store: Callable[[], PatientStore], postgres_url: str
) -> None:
    import psycopg

    store = open_store()
    _session(store)
    store.add_turn(_turn("p1", 1, 1, "before the drop"))

    def drop() -> None:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )

    drop()
    assert [t.patient_text for t in store.turns("p1", 1)] == ["before the drop"]  # read again
    drop()
    with pytest.raises(psycopg.OperationalError):  # a write is never retried blindly
        store.add_turn(_turn("p1", 1, 2, "during the drop"))
    store.add_turn(_turn("p1", 1, 2, "after the drop"))
    assert [t.patient_text for t in store.turns("p1", 1)] == ["before the drop", "after the drop"]


def _checkpoints_at(path: Path) -> object:
    """Open the SQLite checkpointer of a home at `path` (its file is `checkpoints.sqlite`)."""
    models = {role: ModelSpec(backend="scripted") for role in ROLES}
    return checkpoint_saver(Settings(models=models, storage={"home": str(path)}))  # type: ignore[arg-type]


@pytest.mark.parametrize("opener", [SqliteDatabase, _checkpoints_at], ids=["store", "checkpoints"])
def test_connections_opening_a_new_file_at_once_all_open(
    tmp_path: Path, opener: Callable[[Path], object]
) -> None:
    # Two connections that switch a new file to WAL together deadlock; SQLite answers one
    # "database is locked" at once, without its busy timeout (seen with two processes, on the
    # patient store and, with two workers starting on one new home, on the checkpoint file).
    errors: list[BaseException] = []
    for round_no in range(40):
        path = tmp_path / f"race-{round_no}.sqlite"
        barrier = threading.Barrier(6)

        def open_it(path: Path = path, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                opener(path)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []


def test_a_session_closed_while_its_lease_is_taken_is_not_resumed(make_app: AppFactory) -> None:
    # A second writer reads "session 1 is open", and its writer closes it before the lease
    # is taken: the second must start session 2, not hold the closed session 1.
    app = make_app()
    first = app.start_session("p-race", profile={"patient_id": "p-race"})
    first.respond("I slept badly again.")
    store = app.services.store
    real = store.acquire_lease
    raced: list[bool] = []

    def acquire(*args: Any, **kwargs: Any) -> bool:
        if not raced:
            raced.append(True)
            first.end()
        return real(*args, **kwargs)

    store.acquire_lease = acquire  # type: ignore[method-assign]
    second = app.start_session("p-race")
    assert raced and second.session_no == 2
    assert second.respond("Today was a little better.").record.turn == 1
