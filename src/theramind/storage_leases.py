"""Session leases in the patient store: one writer per open session, or a typed refusal.

A lease is a row (patient, session, owner id, expiry) in the `leases` table (see
`storage_migrations`). Every statement here runs in a transaction locked on the patient, so the
check of the holder and the write of the new one see no other writer.
Who counts as alive is decided outside SQL (see `theramind.lease`) and passed in as `stale`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from theramind.errors import SessionBusyError, SessionStateError
from theramind.storage_db import Db

Stale = Callable[[str], bool]
"""Judges an owner id: True when its holder is gone and its lease may be taken over."""


def never_stale(owner: str) -> bool:
    """Treat every holder as alive (only expiry frees a lease)."""
    return False


class SessionLeases:
    """The lease statements of `PatientStore` (mixed in; uses its transaction and reads)."""

    def transaction(self, key: str | None = None) -> AbstractContextManager[Db]:
        """Run statements atomically, writers of patient `key` queued (provided by the store)."""
        raise NotImplementedError

    def _one(self, sql: str, *args: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def _put_lease(db: Db, patient_id: str, session_no: int, owner: str, ttl_s: float) -> None:
        db.execute(
            "INSERT INTO leases (patient_id, session_no, owner, expires_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(patient_id, session_no) DO UPDATE SET owner = excluded.owner, "
            "expires_at = excluded.expires_at",
            (patient_id, session_no, owner, time.time() + ttl_s),
        )

    @staticmethod
    def _check_lease(
        db: Db, patient_id: str, session_no: int, owner: str | None, stale: Stale
    ) -> bool:
        """Raise `SessionBusyError` if a live writer other than `owner` holds the session.

        Returns whether `owner` already held it.
        """
        row = db.execute(
            "SELECT owner, expires_at FROM leases WHERE patient_id = ? AND session_no = ?",
            (patient_id, session_no),
        ).fetchone()
        if row is None:
            return False
        if row[0] == owner:
            return True
        if float(row[1]) > time.time() and not stale(str(row[0])):
            raise SessionBusyError(
                f"session {session_no} of {patient_id!r} is in use by another writer (another "
                "process or Session handle); wait for it (start_session(..., wait=seconds)) "
                "or end it there"
            )
        return False

    def acquire_lease(
        self,
        patient_id: str,
        session_no: int,
        owner: str,
        *,
        ttl_s: float = 300.0,
        stale: Stale = never_stale,
    ) -> bool:
        """Take or renew the session's lease for `owner`; return True when newly taken.

        A lease held by someone else is taken over only once it expired or `stale` says its
        holder is gone.

        Raises:
            SessionBusyError: another live writer holds the session.
            SessionStateError: the session does not exist.
        """
        with self.transaction(patient_id) as db:
            if (
                db.execute(
                    "SELECT 1 FROM sessions WHERE patient_id = ? AND session_no = ?",
                    (patient_id, session_no),
                ).fetchone()
                is None
            ):
                raise SessionStateError(f"patient {patient_id!r} has no session {session_no}")
            held = self._check_lease(db, patient_id, session_no, owner, stale)
            self._put_lease(db, patient_id, session_no, owner, ttl_s)
        return not held

    def release_lease(self, patient_id: str, session_no: int, owner: str) -> None:
        """Give up `owner`'s lease on a session (nothing happens if it holds none)."""
        with self.transaction(patient_id) as db:
            db.execute(
                "DELETE FROM leases WHERE patient_id = ? AND session_no = ? AND owner = ?",
                (patient_id, session_no, owner),
            )

    def lease_owner(self, patient_id: str, session_no: int) -> str | None:
        """Return who holds a session's lease (expired or not), if anyone."""
        row = self._one(
            "SELECT owner FROM leases WHERE patient_id = ? AND session_no = ?",
            patient_id,
            session_no,
        )
        return str(row[0]) if row else None
