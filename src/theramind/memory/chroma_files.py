"""The files of an embedded chroma store: what a dropped collection leaves behind, and cleaning it.

Chroma deletes a collection's rows but leaves their text in the free pages of `chroma.sqlite3`
and the collection's vector index directory (named by its vector segment id) on disk. These
helpers read chroma's `segments` table, so they follow its on-disk layout (chromadb 1.x); if
that layout changes they do nothing and say so in the log. New stores can start from a copy of
an empty one (`FreshStores`).
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import threading
import uuid
from contextlib import closing
from pathlib import Path

from theramind.erasure import vacuum_file

logger = logging.getLogger(__name__)

DATABASE = "chroma.sqlite3"


def _read_only(db: Path) -> sqlite3.Connection:
    """Open chroma's database for reading only (close it with `contextlib.closing`)."""
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10.0)


def segment_dirs(root: Path, collection_id: str) -> list[Path]:
    """Return the directories under `root` holding the segments of one collection."""
    db = root / DATABASE
    if not db.is_file():
        return []
    try:
        with closing(_read_only(db)) as conn:
            rows = conn.execute(
                "SELECT id FROM segments WHERE collection = ?", (collection_id,)
            ).fetchall()
    except sqlite3.Error as exc:
        logger.warning("memory: cannot read chroma's segments (%s); index files stay", exc)
        return []
    return [root / str(r[0]) for r in rows if (root / str(r[0])).is_dir()]


def remove_dropped(root: Path, dirs: list[Path]) -> None:
    """Delete the index directories of a dropped collection, then vacuum chroma's database."""
    for path in dirs:
        if path.parent == root:
            shutil.rmtree(path, ignore_errors=True)
    vacuum_file(root / DATABASE, f"{root / DATABASE}")


class FreshStores:
    """Start new embedded stores from a copy of an empty one instead of migrating each.

    Opening a new store runs chroma's 18 schema migrations: about 19 ms of CPU, and chroma
    holds the GIL throughout, so every other session of the process waits too. An experiment
    opens one store per patient track; after the first, each new store is started from a copy
    of that first one's database taken right after chroma created it (its rows are the same in
    every new store: the default tenant and database, no ids), and chroma opens the copy in
    about 9 ms. A directory that already holds a database is never touched.
    """

    def __init__(self) -> None:
        """Hold no template until a first new store has been created."""
        self._lock = threading.Lock()
        self._template: bytes | None = None

    def prepare(self, root: Path) -> bool:
        """Seed `root` if it holds no database yet; return whether chroma must create one.

        True means chroma migrates a new database itself: call `learn` once it has.
        """
        return not (root / DATABASE).exists() and not self.seed(root)

    def seed(self, root: Path) -> bool:
        """Put the empty database into a new store directory; return whether it did.

        Written under another name and linked into place, so a reader never sees half a
        file and a database already there (or one that appeared meanwhile: another opener)
        is left as it is.
        """
        template = self._template
        db = root / DATABASE
        if template is None:
            return False
        part = root / f".{DATABASE}.{uuid.uuid4().hex}.part"
        try:
            part.write_bytes(template)
            os.link(part, db)
        except FileExistsError:
            return False
        except OSError as exc:
            logger.debug("memory: cannot seed %s (%s); chroma creates it", db, exc)
            return False
        finally:
            part.unlink(missing_ok=True)
        return True

    def learn(self, root: Path) -> None:
        """Keep a consistent copy of a store chroma has just created (once per process)."""
        if self._template is not None:
            return
        with self._lock:
            if self._template is not None:
                return
            try:
                with closing(_read_only(root / DATABASE)) as src:
                    if src.execute("SELECT COUNT(*) FROM collections").fetchone()[0]:
                        return  # not empty after all: nothing to copy
                    with closing(sqlite3.connect(":memory:")) as copy:
                        src.backup(copy)
                        self._template = copy.serialize()
            except (sqlite3.Error, AttributeError) as exc:  # serialize() is optional
                logger.debug("memory: no template store from %s (%s)", root, exc)


fresh_stores = FreshStores()
"""The process's template for new embedded stores."""
