"""Patient records: profiles, sessions, turns, outcomes and risk events, on SQLite or Postgres."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from theramind.errors import (
    SessionBusyError,
    SessionClosedError,
    SessionStateError,
    UnknownPatientError,
)
from theramind.records import (
    PatientProfile,
    RiskEvent,
    SessionOutcome,
    SessionPlan,
    TurnRecord,
    utcnow,
)
from theramind.storage_db import (
    Database,
    Db,
    PostgresDatabase,
    SqliteDatabase,
    is_postgres_url,
)
from theramind.storage_leases import SessionLeases, Stale, never_stale
from theramind.storage_migrations import migrate

if TYPE_CHECKING:
    from theramind.config import Settings


class PatientStore(SessionLeases):
    """The patient store, on a SQLite file or a PostgreSQL database, one transaction per write.

    Each open session has at most one writer: the holder of its lease (a row with an owner id
    and an expiry). Turn numbers are checked in the transaction that writes the turn, so two
    writers can never both store turn N. Every write locks its patient first (SQLite: the
    whole file; Postgres: an advisory lock on the patient id), so the checks and the write
    see no other writer of that patient, in any process. The schema is brought up to date on
    opening (`storage_migrations`).
    """

    def __init__(self, location: Path | str | Database) -> None:
        """Open a store: a `Database`, a `postgresql://` URL, or the path of a SQLite file."""
        if isinstance(location, Database):
            self.db = location
        elif isinstance(location, str) and is_postgres_url(location):
            self.db = PostgresDatabase(location)
        else:
            self.db = SqliteDatabase(location)
        self.path: Path | None = self.db.path if isinstance(self.db, SqliteDatabase) else None
        """The SQLite file (None on Postgres)."""
        migrate(self.db)

    @property
    def backend(self) -> str:
        """'sqlite' or 'postgres'."""
        return self.db.dialect

    @contextmanager
    def transaction(self, key: str | None = None) -> Iterator[Db]:
        """Run statements atomically; writers of the same patient (`key`) queue."""
        with self.db.transaction(key) as db:
            yield db

    def _one(self, sql: str, *args: Any) -> Any:
        return self.db.one(sql, *args)

    def _all(self, sql: str, *args: Any) -> list[Any]:
        return self.db.all(sql, *args)

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    # -- patients -------------------------------------------------------------------------------

    def upsert_patient(self, profile: PatientProfile) -> None:
        """Create a patient or update the profile."""
        with self.transaction(profile.patient_id) as db:
            db.execute(
                "INSERT INTO patients (patient_id, profile, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT(patient_id) DO UPDATE SET profile = excluded.profile",
                (profile.patient_id, profile.model_dump_json(), utcnow().isoformat()),
            )

    def patient(self, patient_id: str) -> PatientProfile:
        """Return a patient's profile.

        Raises:
            UnknownPatientError: when no such patient exists.
        """
        row = self._one("SELECT profile FROM patients WHERE patient_id = ?", patient_id)
        if row is None:
            raise UnknownPatientError(
                f"unknown patient {patient_id!r}: register it first (start_session(..., "
                "profile=...))"
            )
        return PatientProfile.model_validate_json(row[0])

    def has_patient(self, patient_id: str) -> bool:
        """Return whether a patient exists."""
        return self._one("SELECT 1 FROM patients WHERE patient_id = ?", patient_id) is not None

    def patients(self) -> list[str]:
        """Return every patient id."""
        return [r[0] for r in self._all("SELECT patient_id FROM patients ORDER BY patient_id")]

    # -- sessions -------------------------------------------------------------------------------

    def open_session(self, patient_id: str) -> tuple[int, str] | None:
        """Return (session_no, status) of the patient's unfinished session, if any."""
        row = self._one(
            "SELECT session_no, status FROM sessions WHERE patient_id = ? AND status != 'closed' "
            "ORDER BY session_no DESC LIMIT 1",
            patient_id,
        )
        return (int(row[0]), str(row[1])) if row else None

    def last_session_no(self, patient_id: str) -> int:
        """Return the highest session number so far (0 when none)."""
        row = self._one("SELECT MAX(session_no) FROM sessions WHERE patient_id = ?", patient_id)
        return int(row[0] or 0)

    def create_session(
        self, plan: SessionPlan, *, owner: str | None = None, ttl_s: float = 300.0
    ) -> None:
        """Record a new open session with its plan, leased to `owner` when given, atomically.

        Raises:
            SessionBusyError: another writer started this session, or another session of the
                patient is still open.
        """
        self.patient(plan.patient_id)
        with self.transaction(plan.patient_id) as db:
            row = db.execute(
                "SELECT session_no FROM sessions WHERE patient_id = ? "
                "AND (status != 'closed' OR session_no >= ?) LIMIT 1",
                (plan.patient_id, plan.session_no),
            ).fetchone()
            if row is not None:
                raise SessionBusyError(
                    f"session {row[0]} of {plan.patient_id!r} was started by another writer; "
                    "wait for it (start_session(..., wait=seconds)) or close it first"
                )
            db.execute(
                "INSERT INTO sessions (patient_id, session_no, status, plan, started_at) "
                "VALUES (?, ?, 'open', ?, ?)",
                (plan.patient_id, plan.session_no, plan.model_dump_json(), utcnow().isoformat()),
            )
            if owner is not None:
                self._put_lease(db, plan.patient_id, plan.session_no, owner, ttl_s)

    def session_status(self, patient_id: str, session_no: int) -> str:
        """Return 'open', 'closing' or 'closed'.

        Raises:
            SessionStateError: when the session does not exist.
        """
        row = self._one(
            "SELECT status FROM sessions WHERE patient_id = ? AND session_no = ?",
            patient_id,
            session_no,
        )
        if row is None:
            raise SessionStateError(f"patient {patient_id!r} has no session {session_no}")
        return str(row[0])

    def plan(self, patient_id: str, session_no: int) -> SessionPlan:
        """Return a session's plan."""
        row = self._one(
            "SELECT plan FROM sessions WHERE patient_id = ? AND session_no = ?",
            patient_id,
            session_no,
        )
        if row is None:
            raise SessionStateError(f"patient {patient_id!r} has no session {session_no}")
        return SessionPlan.model_validate_json(row[0])

    def set_language(self, plan: SessionPlan) -> None:
        """Store a language detected during a session: in its plan and in the patient's profile."""
        profile = self.patient(plan.patient_id).model_copy(update={"language": plan.language})
        with self.transaction(plan.patient_id) as db:
            db.execute(
                "UPDATE sessions SET plan = ? WHERE patient_id = ? AND session_no = ?",
                (plan.model_dump_json(), plan.patient_id, plan.session_no),
            )
            db.execute(
                "UPDATE patients SET profile = ? WHERE patient_id = ?",
                (profile.model_dump_json(), plan.patient_id),
            )

    def set_status(self, patient_id: str, session_no: int, status: str) -> None:
        """Move a session to another status."""
        with self.transaction(patient_id) as db:
            db.execute(
                "UPDATE sessions SET status = ? WHERE patient_id = ? AND session_no = ?",
                (status, patient_id, session_no),
            )

    # -- turns ----------------------------------------------------------------------------------

    def add_turn(
        self,
        record: TurnRecord,
        risk: RiskEvent | None = None,
        *,
        closing: bool = False,
        owner: str | None = None,
        ttl_s: float = 300.0,
        stale: Stale = never_stale,
    ) -> None:
        """Write a turn, its risk event and a closing status in one transaction.

        The turn must be the next one of the session, and the writer (`owner`, or no one) must
        hold the session or find it free; the lease is renewed with the write.

        Raises:
            SessionClosedError: when the session is no longer open.
            SessionBusyError: another writer holds the session, or already stored this turn
                number (nothing is written).
        """
        with self.transaction(record.patient_id) as db:
            row = db.execute(
                "SELECT status FROM sessions WHERE patient_id = ? AND session_no = ?",
                (record.patient_id, record.session_no),
            ).fetchone()
            if row is None or row[0] == "closed":
                raise SessionClosedError(
                    f"session {record.session_no} of {record.patient_id!r} is closed"
                )
            self._check_lease(db, record.patient_id, record.session_no, owner, stale)
            last = db.execute(
                "SELECT COALESCE(MAX(turn), 0) FROM turns WHERE patient_id = ? AND session_no = ?",
                (record.patient_id, record.session_no),
            ).fetchone()[0]
            if record.turn != int(last) + 1:
                raise SessionBusyError(
                    f"turn {record.turn} of session {record.session_no} of "
                    f"{record.patient_id!r} cannot be stored: the session has {last} turns "
                    "(another writer took part); start the session again to resume it"
                )
            db.execute(
                "INSERT INTO turns (patient_id, session_no, turn, record) VALUES (?, ?, ?, ?)",
                (record.patient_id, record.session_no, record.turn, record.model_dump_json()),
            )
            if owner is not None:
                self._put_lease(db, record.patient_id, record.session_no, owner, ttl_s)
            if risk is not None:
                db.execute(
                    "INSERT INTO risk_events (patient_id, session_no, turn, event) "
                    "VALUES (?, ?, ?, ?)",
                    (risk.patient_id, risk.session_no, risk.turn, risk.model_dump_json()),
                )
            if closing:
                db.execute(
                    "UPDATE sessions SET status = 'closing' "
                    "WHERE patient_id = ? AND session_no = ?",
                    (record.patient_id, record.session_no),
                )

    def turns(self, patient_id: str, session_no: int) -> list[TurnRecord]:
        """Return a session's turns in order."""
        rows = self._all(
            "SELECT record FROM turns WHERE patient_id = ? AND session_no = ? ORDER BY turn",
            patient_id,
            session_no,
        )
        return [TurnRecord.model_validate_json(r[0]) for r in rows]

    # -- outcomes and history -------------------------------------------------------------------

    def close_session(
        self,
        outcome: SessionOutcome,
        *,
        owner: str | None = None,
        stale: Stale = never_stale,
    ) -> None:
        """Store the outcome, close the session, mark risk follow-ups, in one transaction.

        Raises:
            SessionBusyError: another writer holds the session (nothing is written).
        """
        with self.transaction(outcome.patient_id) as db:
            self._check_lease(db, outcome.patient_id, outcome.session_no, owner, stale)
            db.execute(
                "UPDATE sessions SET status = 'closed', outcome = ?, ended_at = ? "
                "WHERE patient_id = ? AND session_no = ?",
                (
                    outcome.model_dump_json(),
                    utcnow().isoformat(),
                    outcome.patient_id,
                    outcome.session_no,
                ),
            )
            db.execute(
                "UPDATE risk_events SET followed_up = 1 WHERE patient_id = ? AND session_no < ?",
                (outcome.patient_id, outcome.session_no),
            )
            db.execute(
                "DELETE FROM leases WHERE patient_id = ? AND session_no = ?",
                (outcome.patient_id, outcome.session_no),
            )

    def outcomes(self, patient_id: str) -> list[SessionOutcome]:
        """Return the outcomes of every closed session, oldest first."""
        rows = self._all(
            "SELECT outcome FROM sessions WHERE patient_id = ? AND outcome IS NOT NULL "
            "ORDER BY session_no",
            patient_id,
        )
        return [SessionOutcome.model_validate_json(r[0]) for r in rows]

    def risk_events(self, patient_id: str, *, open_only: bool = False) -> list[RiskEvent]:
        """Return a patient's risk events (only those not yet followed up when `open_only`)."""
        sql = "SELECT event FROM risk_events WHERE patient_id = ?"
        if open_only:
            sql += " AND followed_up = 0"
        rows = self._all(sql + " ORDER BY id", patient_id)
        return [RiskEvent.model_validate_json(r[0]) for r in rows]

    def export_patient(self, patient_id: str) -> dict[str, Any]:
        """Return everything stored about one patient as plain data."""
        profile = self.patient(patient_id)
        sessions = []
        for no, status, plan, outcome in self._all(
            "SELECT session_no, status, plan, outcome FROM sessions WHERE patient_id = ? "
            "ORDER BY session_no",
            patient_id,
        ):
            sessions.append(
                {
                    "session_no": no,
                    "status": status,
                    "plan": json.loads(plan),
                    "outcome": json.loads(outcome) if outcome else None,
                    "turns": [t.model_dump(mode="json") for t in self.turns(patient_id, no)],
                }
            )
        return {
            "profile": profile.model_dump(mode="json"),
            "sessions": sessions,
            "risk_events": [e.model_dump(mode="json") for e in self.risk_events(patient_id)],
        }

    def discard_sessions(self, patient_id: str, first: int) -> list[int]:
        """Erase sessions numbered `first` and later (turns, risk events, outcomes) at once.

        Risk events of the session before `first` are marked not followed up again, since the
        sessions that followed them up are gone. Returns the numbers erased.
        """
        self.patient(patient_id)
        with self.transaction(patient_id) as db:
            numbers = [
                int(row[0])
                for row in db.execute(
                    "SELECT session_no FROM sessions WHERE patient_id = ? AND session_no >= ? "
                    "ORDER BY session_no",
                    (patient_id, first),
                )
            ]
            for table in ("turns", "risk_events", "leases", "sessions"):
                db.execute(
                    f"DELETE FROM {table} WHERE patient_id = ? AND session_no >= ?",
                    (patient_id, first),
                )
            db.execute(
                "UPDATE risk_events SET followed_up = 0 WHERE patient_id = ? AND session_no >= ?",
                (patient_id, first - 1),
            )
        return numbers

    def delete_patient(self, patient_id: str) -> None:
        """Erase one patient and everything recorded about them."""
        self.patient(patient_id)
        with self.transaction(patient_id) as db:
            for table in ("turns", "risk_events", "leases", "sessions", "patients"):
                db.execute(f"DELETE FROM {table} WHERE patient_id = ?", (patient_id,))
        self.compact()

    def compact(self) -> None:
        """Reclaim the space of erased rows (SQLite: rewrite the file and empty the WAL)."""
        self.db.compact()


def open_store(settings: Settings) -> PatientStore:
    """Open the patient store the settings name (`storage.backend`)."""
    storage = settings.storage
    if storage.backend == "postgres":
        assert storage.url is not None  # checked by the settings
        return PatientStore(PostgresDatabase(storage.url))
    return PatientStore(settings.home / "theramind.sqlite")
