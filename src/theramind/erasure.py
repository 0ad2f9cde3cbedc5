"""Compacting SQLite files after an erasure, so erased text does not linger on disk.

SQLite keeps deleted rows in free pages and old page images in the WAL file. `secure_delete`
zeroes pages as rows are deleted; `VACUUM` rewrites the file without free pages; a TRUNCATE
checkpoint empties the WAL. A reader in another process can make VACUUM fail: the zeroed pages
then stay (nothing readable), and the next erasure tries again.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from contextlib import nullcontext
from pathlib import Path

log = logging.getLogger(__name__)


def vacuum(
    conn: sqlite3.Connection, label: str, lock: threading.Lock | threading.RLock | None = None
) -> bool:
    """Rewrite a database without free pages and empty its WAL; return whether it vacuumed."""
    with lock if lock is not None else nullcontext():
        if conn.in_transaction:
            conn.commit()
        try:
            conn.execute("VACUUM")
            done = True
        except sqlite3.OperationalError as exc:  # another process is reading
            log.warning("could not vacuum %s: %s", label, exc)
            done = False
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError as exc:
            log.warning("could not empty the WAL of %s: %s", label, exc)
        return done


def vacuum_file(path: Path, label: str) -> bool:
    """Vacuum a database file through a connection of its own (for files other code owns)."""
    if not path.is_file():
        return False
    conn = sqlite3.connect(str(path), timeout=10.0, isolation_level=None)
    try:
        conn.execute("PRAGMA secure_delete=ON")
        return vacuum(conn, label)
    finally:
        conn.close()
