"""The two databases under the patient store: a SQLite file, or a PostgreSQL server.

`PatientStore` writes its SQL once, with `?` placeholders, and runs it through a `Database`:

- `SqliteDatabase`: one connection in WAL mode; a transaction is `BEGIN IMMEDIATE`, so writers
  in every thread and process queue for the whole file.
- `PostgresDatabase`: one psycopg connection (autocommit, so each read is its own statement);
  a transaction is a psycopg transaction that first takes a transaction-scoped advisory lock
  on its key (a patient id), so writers of one patient queue as they do on SQLite while
  writers of different patients run side by side.

Either way the checks a write makes (is the session open, who holds its lease, which turn
comes next) and the write itself happen under that lock, in one transaction.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from urllib.parse import urlsplit, urlunsplit

from theramind.erasure import vacuum
from theramind.errors import ConfigError

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

LOCK_NAMESPACE = 0x544D
"""First key of every advisory lock the store takes on Postgres (its own key space)."""

STORE_TABLES = ("patients", "sessions", "turns", "risk_events", "leases")


class Cursor(Protocol):
    """What a statement returns: rows as tuples."""

    def fetchone(self) -> Any:
        """Return the next row, or None."""

    def fetchall(self) -> list[Any]:
        """Return the remaining rows."""

    def __iter__(self) -> Iterator[Any]:
        """Iterate over the remaining rows."""


class Db(Protocol):
    """A transaction's handle: runs statements with `?` placeholders."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor:
        """Run one statement."""


class Database(ABC):
    """A connection to the store's database, shared by the threads of one process."""

    dialect: ClassVar[str]

    @abstractmethod
    def transaction(self, key: str | None = None) -> AbstractContextManager[Db]:
        """Run statements atomically; writers with the same `key` (or any, on SQLite) queue."""

    @abstractmethod
    def one(self, sql: str, *args: Any) -> Any:
        """Return the first row of a read, or None."""

    @abstractmethod
    def all(self, sql: str, *args: Any) -> list[Any]:
        """Return every row of a read."""

    @abstractmethod
    def compact(self) -> None:
        """Reclaim the space of erased rows."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection."""

    @property
    @abstractmethod
    def label(self) -> str:
        """Where the data lives, for messages (never with a password)."""


def use_wal(conn: sqlite3.Connection, wait_s: float = 30.0) -> None:
    """Switch a SQLite file to WAL, retrying while another connection switches the same new file.

    Two connections that both read a new file and then ask to change its journal mode would
    deadlock, so SQLite answers one of them "database is locked" at once, without waiting for
    the busy timeout. Once the statement ends its read lock is gone, and a retry finds the file
    in WAL mode already. Two processes opening one new home at once meet this (the patient
    store and the checkpoint file alike).
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class SqliteDatabase(Database):
    """A SQLite file (WAL, `secure_delete`), shared by threads and processes."""

    dialect = "sqlite"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            str(path), timeout=30.0, check_same_thread=False, isolation_level=None
        )
        self._lock = threading.RLock()
        with self._lock:
            self._conn.execute("PRAGMA busy_timeout=30000")
            use_wal(self._conn)
            self._conn.execute("PRAGMA foreign_keys=ON")
            # Deleted rows are overwritten with zeros, so erased text does not linger in pages.
            self._conn.execute("PRAGMA secure_delete=ON")

    @property
    def label(self) -> str:
        """The database file's path."""
        return str(self.path)

    @contextmanager
    def transaction(self, key: str | None = None) -> Iterator[Db]:
        """BEGIN IMMEDIATE: writers across threads and processes queue for the file."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def one(self, sql: str, *args: Any) -> Any:
        """Return the first row of a read, or None."""
        with self._lock:
            return self._conn.execute(sql, args).fetchone()

    def all(self, sql: str, *args: Any) -> list[Any]:
        """Return every row of a read."""
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def compact(self) -> None:
        """Rewrite the file without free pages and empty the WAL (after an erasure)."""
        if str(self.path) != ":memory:":
            vacuum(self._conn, str(self.path), self._lock)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()


def redact_url(url: str) -> str:
    """Return a database URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def is_postgres_url(value: str) -> bool:
    """Return whether a store location names a PostgreSQL server rather than a file."""
    return urlsplit(value).scheme in ("postgresql", "postgres")


class _PgDb:
    """A Postgres transaction's handle: `?` placeholders become psycopg's `%s`."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        return self._conn.execute(sql.replace("?", "%s"), tuple(parameters))


class PostgresDatabase(Database):
    """A PostgreSQL database reached by URL, through one psycopg connection per process.

    A broken connection (a server restart, a dropped network link) is replaced on next use.
    A read that met the break is run again; a write fails (its transaction was rolled back by
    the server, or its outcome is unknown), so no write is ever applied twice.
    """

    dialect = "postgres"

    def __init__(self, url: str, *, connect_timeout_s: float = 10.0) -> None:
        try:
            import psycopg
        except ImportError as exc:
            raise ConfigError(
                "storage.backend 'postgres' needs psycopg: pip install 'theramind[postgres]'"
            ) from exc
        self._psycopg = psycopg
        self.url = url
        self._timeout = connect_timeout_s
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[Any] | None = None
        with self._lock:
            self._connection()

    @property
    def label(self) -> str:
        """The server URL, without its password."""
        return redact_url(self.url)

    def _connection(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        if conn is not None:
            log.warning("patient store: connection to %s lost; reconnecting", self.label)
        try:
            conn = self._psycopg.connect(
                self.url, autocommit=True, connect_timeout=max(1, round(self._timeout))
            )
        except self._psycopg.OperationalError as exc:
            raise ConfigError(
                f"cannot reach the patient store at {self.label}: {exc}; start the server "
                "(see docs/deployment.md) or fix storage.url"
            ) from exc
        self._conn = conn
        return conn

    @contextmanager
    def transaction(self, key: str | None = None) -> Iterator[Db]:
        """A transaction that first locks `key`, so writers of one patient queue."""
        with self._lock:
            conn = self._connection()
            with conn.transaction():
                db = _PgDb(conn)
                if key is not None:
                    db.execute(
                        "SELECT pg_advisory_xact_lock(?, hashtext(?))", (LOCK_NAMESPACE, key)
                    )
                yield db

    def _read(self, sql: str, args: Sequence[Any]) -> list[Any]:
        """Run a read; one that met a broken connection is run again on a new one."""
        with self._lock:
            try:
                return _PgDb(self._connection()).execute(sql, args).fetchall()
            except self._psycopg.OperationalError:
                if self._conn is None or not (self._conn.broken or self._conn.closed):
                    raise
            return _PgDb(self._connection()).execute(sql, args).fetchall()

    def one(self, sql: str, *args: Any) -> Any:
        """Return the first row of a read, or None (a dropped connection is replaced once)."""
        rows = self._read(sql, args)
        return rows[0] if rows else None

    def all(self, sql: str, *args: Any) -> list[Any]:
        """Return every row of a read (a dropped connection is replaced once)."""
        return self._read(sql, args)

    def compact(self) -> None:
        """VACUUM the store's tables, so the space of erased rows is freed for reuse.

        Postgres keeps erased bytes in free space and in its WAL until they are overwritten;
        the server's operator compacts further (VACUUM FULL) where that matters.
        """
        with self._lock:
            conn = self._connection()
            for table in STORE_TABLES:
                try:
                    conn.execute(f"VACUUM {table}")
                except self._psycopg.Error as exc:
                    log.warning("could not vacuum %s in %s: %s", table, self.label, exc)

    def close(self) -> None:
        """Close the connection, if one is open."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
