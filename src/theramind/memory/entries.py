"""Memory entries on their way to the index, and the batched near-duplicate check.

A batch of entries (a turn's message and risk note, a session's consolidation, or several
turns' writes pooled for one patient) is checked against the store with one search and
written with one upsert, instead of one search and one upsert per entry.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from theramind.memory.index import VectorIndex
from theramind.memory.scope import Scope
from theramind.records import MemoryKind


@dataclass(frozen=True)
class Entry:
    """One memory to store: its kind, text, where it was said, and an optional fixed key."""

    kind: MemoryKind
    text: str
    session_no: int
    turn: int | None = None
    key: str | None = None


_NEAREST = 8
"""Neighbours fetched per entry for the near-duplicate check (any kind; filtered after)."""


def novel(
    index: VectorIndex,
    patient_id: str,
    entries: Sequence[Entry],
    vectors: np.ndarray,
    threshold: float,
) -> list[bool]:
    """Return, per entry, whether it is new.

    New: no stored item and no earlier entry of the batch
    of the same kind is at least `threshold` similar to it.

    One unfiltered search serves every entry: a metadata filter (the kind) makes chroma
    pre-filter, which costs several times the search on a large collection. A same-kind
    near-duplicate is missed only if `_NEAREST` items of other kinds are nearer still.
    """
    keep = [True] * len(entries)
    nearest = index.query_many(patient_id, vectors, Scope(patient_id).where(), _NEAREST)
    accepted: dict[MemoryKind, list[int]] = {}
    for i, (entry, hits) in enumerate(zip(entries, nearest, strict=True)):
        same = accepted.setdefault(entry.kind, [])
        stored = any(
            h.metadata.get("kind") == entry.kind and h.similarity >= threshold for h in hits
        )
        repeated = bool(same) and float(np.max(vectors[same] @ vectors[i])) >= threshold
        if stored or repeated:
            keep[i] = False
        else:
            same.append(i)
    return keep


class PendingWrites:
    """Entries waiting for their patient's next background write, pooled per patient."""

    def __init__(self) -> None:
        """Start with nothing pending."""
        self._entries: dict[str, list[Entry]] = {}
        self._lock = threading.Lock()

    def add(self, patient_id: str, entries: Sequence[Entry]) -> bool:
        """Queue entries; return True when the patient had none pending (a write is due)."""
        with self._lock:
            queue = self._entries.setdefault(patient_id, [])
            first = not queue
            queue.extend(entries)
            return first

    def take(self, patient_id: str) -> list[Entry]:
        """Return and clear the patient's pending entries, oldest first."""
        with self._lock:
            return self._entries.pop(patient_id, [])


@dataclass(frozen=True)
class Held:
    """A checked turn memory not yet in the index: its id, vector, text and metadata."""

    id: str
    vector: np.ndarray
    text: str
    metadata: dict[str, object]
    since: float
    """When it was held (time.monotonic), so an old hold is written even if no turn follows."""


def holdable(entry: Entry) -> bool:
    """Return whether an entry may wait in memory.

    Only what is restored should the process die first may: a turn's disclosure, which the
    close's backfill restores from the session's stored turns, and the intake, which the plan
    of session 1 seeds again until a session has closed (and a close writes every hold).
    """
    return (entry.kind == "disclosure" and entry.turn is not None) or entry.kind == "intake"
