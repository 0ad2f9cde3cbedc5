"""The files of an embedded chroma store: what a dropped collection leaves behind, and cleaning it.

Chroma deletes a collection's rows but leaves their text in the free pages of `chroma.sqlite3`
and the collection's vector index directory (named by its vector segment id) on disk. These
helpers read chroma's `segments` table, so they follow its on-disk layout (chromadb 1.x); if
that layout changes they do nothing and say so in the log.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from pathlib import Path

from theramind.erasure import vacuum_file

logger = logging.getLogger(__name__)

DATABASE = "chroma.sqlite3"


def segment_dirs(root: Path, collection_id: str) -> list[Path]:
    """Return the directories under `root` holding the segments of one collection."""
    db = root / DATABASE
    if not db.is_file():
        return []
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10.0)
        try:
            rows = conn.execute(
                "SELECT id FROM segments WHERE collection = ?", (collection_id,)
            ).fetchall()
        finally:
            conn.close()
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
