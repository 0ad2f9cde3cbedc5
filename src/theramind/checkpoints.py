"""Where the graphs' checkpoints live: LangGraph's in-memory, SQLite or Postgres saver."""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING, Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

from theramind.config import Settings
from theramind.errors import ConfigError
from theramind.storage_db import use_wal

if TYPE_CHECKING:
    from psycopg import Connection
    from psycopg.rows import DictRow


def checkpoint_saver(settings: Settings) -> BaseCheckpointSaver[Any]:
    """The graphs' checkpointer the settings choose: memory, a SQLite file or Postgres."""
    kind = settings.storage.checkpointer
    if kind == "memory":
        return InMemorySaver()
    if kind == "postgres":
        url = settings.storage.checkpoint_url
        if not url:  # the settings refuse this; a hand-built Settings may not
            raise ConfigError("storage.url is required for the postgres checkpointer")
        return postgres_saver(url)
    settings.home.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(settings.home / "checkpoints.sqlite"), check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=30000")
    use_wal(conn)
    # In WAL mode NORMAL keeps every committed checkpoint across a killed process (only an
    # operating-system crash can lose the last ones) and skips an fsync per graph step.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA secure_delete=ON")  # erased checkpoints leave zeros, not text
    return SqliteSaver(conn)


CHECKPOINT_SETUP_LOCK = 0x544D0C4B
"""Advisory lock held while the Postgres checkpointer creates or upgrades its tables."""


def _try_lock(conn: Connection[DictRow]) -> bool:
    """Try to take the setup lock without waiting; return whether this connection holds it."""
    row = conn.execute(
        "SELECT pg_try_advisory_lock(%s) AS taken", (CHECKPOINT_SETUP_LOCK,)
    ).fetchone()
    return bool(row and row["taken"])


def postgres_saver(url: str) -> BaseCheckpointSaver[Any]:
    """LangGraph's Postgres saver on a connection of its own (its tables set up once)."""
    try:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row
    except ImportError as exc:
        raise ConfigError(
            "checkpointer 'postgres' needs `pip install 'theramind[postgres]'`"
        ) from exc
    from theramind.storage_db import redact_url

    try:
        # The saver reads rows as mappings and cannot use prepared statements behind a pooler.
        conn = psycopg.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row)
    except psycopg.OperationalError as exc:
        raise ConfigError(
            f"cannot reach the checkpoint database at {redact_url(url)}: {exc}; start the "
            "server (see docs/deployment.md) or fix storage.url"
        ) from exc
    saver = PostgresSaver(conn)
    # Workers starting together would race to create the tables: one sets up, the rest wait.
    # They poll rather than block in the server: the setup builds indexes CONCURRENTLY, which
    # waits for every open transaction, a blocked lock request included (a deadlock).
    deadline = time.monotonic() + 120.0
    while not _try_lock(conn):
        if time.monotonic() > deadline:
            raise ConfigError(
                f"the checkpoint tables at {redact_url(url)} stayed locked for 120 s by another "
                "worker setting them up; check that worker, then start again"
            )
        time.sleep(0.1)
    try:
        saver.setup()
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (CHECKPOINT_SETUP_LOCK,))
    return saver
