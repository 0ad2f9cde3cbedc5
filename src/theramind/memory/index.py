"""The vector index interface, and a pure-Python in-memory index for tests and dry runs."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from theramind.memory.embeddings import normalize_rows
from theramind.memory.scope import Where, matches, require_patient_id


@dataclass(frozen=True)
class Hit:
    """One stored document as an index returns it; similarity is a cosine (higher is better)."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    similarity: float = 0.0


class VectorIndex(Protocol):
    """Per-patient vector storage; every method is scoped to one patient and thread-safe."""

    def upsert(
        self,
        patient_id: str,
        ids: list[str],
        vectors: np.ndarray,
        texts: list[str],
        metadatas: list[dict[str, Any]],
    ) -> None:
        """Insert or replace documents of one patient."""
        ...

    def query(self, patient_id: str, vector: np.ndarray, where: Where, limit: int) -> list[Hit]:
        """Return up to `limit` nearest documents matching `where`, most similar first."""
        ...

    def query_many(
        self, patient_id: str, vectors: np.ndarray, where: Where, limit: int
    ) -> list[list[Hit]]:
        """Return, for each row of `vectors`, what `query` would (one search for them all)."""
        ...

    def get(self, patient_id: str, where: Where) -> list[Hit]:
        """Return every document of the patient matching `where`."""
        ...

    def delete(self, patient_id: str, where: Where) -> int:
        """Delete the patient's documents matching `where`; return how many."""
        ...

    def drop(self, patient_id: str) -> int:
        """Delete everything of one patient; return how many documents there were."""
        ...

    def count(self, patient_id: str) -> int:
        """Return how many documents the patient has."""
        ...


@dataclass
class _Doc:
    vector: np.ndarray
    text: str
    metadata: dict[str, Any]


class InMemoryIndex:
    """Numpy cosine search over per-patient dicts. Nothing persists; for tests and dry runs."""

    def __init__(self) -> None:
        """Start empty."""
        self._data: dict[str, dict[str, _Doc]] = {}
        self._lock = threading.RLock()

    def upsert(
        self,
        patient_id: str,
        ids: list[str],
        vectors: np.ndarray,
        texts: list[str],
        metadatas: list[dict[str, Any]],
    ) -> None:
        """Insert or replace documents of one patient."""
        require_patient_id(patient_id)
        rows = normalize_rows(vectors)
        with self._lock:
            docs = self._data.setdefault(patient_id, {})
            for doc_id, row, text, meta in zip(ids, rows, texts, metadatas, strict=True):
                docs[doc_id] = _Doc(row.copy(), text, dict(meta))

    def _matching(self, patient_id: str, where: Where) -> list[tuple[str, _Doc]]:
        require_patient_id(patient_id)
        with self._lock:
            docs = list(self._data.get(patient_id, {}).items())
        return [(i, d) for i, d in docs if matches(d.metadata, where)]

    def query(self, patient_id: str, vector: np.ndarray, where: Where, limit: int) -> list[Hit]:
        """Return up to `limit` nearest documents matching `where`, most similar first."""
        return self.query_many(patient_id, normalize_rows(vector)[:1], where, limit)[0]

    def query_many(
        self, patient_id: str, vectors: np.ndarray, where: Where, limit: int
    ) -> list[list[Hit]]:
        """Return, for each row of `vectors`, its nearest documents matching `where`."""
        queries = normalize_rows(vectors)
        found = self._matching(patient_id, where)
        if not found or limit <= 0:
            return [[] for _ in queries]
        sims = queries @ np.stack([d.vector for _, d in found]).T
        out = []
        for row in sims:
            order = np.argsort(-row, kind="stable")[:limit]
            out.append(
                [
                    Hit(found[i][0], found[i][1].text, dict(found[i][1].metadata), float(row[i]))
                    for i in order
                ]
            )
        return out

    def get(self, patient_id: str, where: Where) -> list[Hit]:
        """Return every document of the patient matching `where`."""
        return [Hit(i, d.text, dict(d.metadata)) for i, d in self._matching(patient_id, where)]

    def delete(self, patient_id: str, where: Where) -> int:
        """Delete the patient's documents matching `where`; return how many."""
        with self._lock:
            doomed = [i for i, _ in self._matching(patient_id, where)]
            docs = self._data.get(patient_id, {})
            for doc_id in doomed:
                docs.pop(doc_id, None)
            return len(doomed)

    def drop(self, patient_id: str) -> int:
        """Delete everything of one patient; return how many documents there were."""
        require_patient_id(patient_id)
        with self._lock:
            return len(self._data.pop(patient_id, {}))

    def count(self, patient_id: str) -> int:
        """Return how many documents the patient has."""
        require_patient_id(patient_id)
        with self._lock:
            return len(self._data.get(patient_id, {}))
