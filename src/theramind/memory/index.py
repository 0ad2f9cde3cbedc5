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


@dataclass
class _Patient:
    """One patient's documents, with their vectors stacked once per change for search."""

    docs: dict[str, _Doc] = field(default_factory=dict)
    _ids: list[str] | None = None
    _matrix: np.ndarray | None = None
    _masks: dict[str, np.ndarray] = field(default_factory=dict)

    def changed(self) -> None:
        """Forget the stacked vectors and filters after a write."""
        self._ids = self._matrix = None
        self._masks.clear()

    def stacked(self) -> tuple[list[str], np.ndarray]:
        """The document ids and their vectors as one matrix, in the same order."""
        if self._ids is None or self._matrix is None:
            self._ids = list(self.docs)
            self._matrix = (
                np.stack([self.docs[i].vector for i in self._ids])
                if self._ids
                else np.zeros((0, 0), dtype=np.float32)
            )
        return self._ids, self._matrix

    def rows(self, where: Where) -> np.ndarray:
        """Positions (in `stacked` order) of the documents matching `where` (cached per filter)."""
        ids, _ = self.stacked()
        key = repr(where)
        mask = self._masks.get(key)
        if mask is None:
            mask = np.array(
                [i for i, doc_id in enumerate(ids) if matches(self.docs[doc_id].metadata, where)],
                dtype=np.int64,
            )
            if len(self._masks) > 32:
                self._masks.clear()
            self._masks[key] = mask
        return mask


class InMemoryIndex:
    """Numpy cosine search over per-patient dicts. Nothing persists.

    For tests, dry runs and the embedded chroma store's in-process copy (`memory/store.py`).
    """

    def __init__(self) -> None:
        """Start empty."""
        self._data: dict[str, _Patient] = {}
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
            patient = self._data.setdefault(patient_id, _Patient())
            for doc_id, row, text, meta in zip(ids, rows, texts, metadatas, strict=True):
                patient.docs[doc_id] = _Doc(row.copy(), text, dict(meta))
            patient.changed()

    def _matching(self, patient_id: str, where: Where) -> list[tuple[str, _Doc]]:
        require_patient_id(patient_id)
        with self._lock:
            patient = self._data.get(patient_id)
            if patient is None:
                return []
            ids, _ = patient.stacked()
            return [(ids[i], patient.docs[ids[i]]) for i in patient.rows(where)]

    def query(self, patient_id: str, vector: np.ndarray, where: Where, limit: int) -> list[Hit]:
        """Return up to `limit` nearest documents matching `where`, most similar first."""
        return self.query_many(patient_id, normalize_rows(vector)[:1], where, limit)[0]

    def query_many(
        self, patient_id: str, vectors: np.ndarray, where: Where, limit: int
    ) -> list[list[Hit]]:
        """Return, for each row of `vectors`, its nearest documents matching `where`."""
        require_patient_id(patient_id)
        queries = normalize_rows(vectors)
        with self._lock:
            patient = self._data.get(patient_id)
            if patient is None or limit <= 0:
                return [[] for _ in queries]
            ids, matrix = patient.stacked()
            rows = patient.rows(where)
            if not len(rows):
                return [[] for _ in queries]
            sims = queries @ matrix[rows].T
            out = []
            for row in sims:
                order = np.argsort(-row, kind="stable")[:limit]
                hits = []
                for i in order:
                    doc_id = ids[rows[i]]
                    doc = patient.docs[doc_id]
                    hits.append(Hit(doc_id, doc.text, dict(doc.metadata), float(row[i])))
                out.append(hits)
            return out

    def get(self, patient_id: str, where: Where) -> list[Hit]:
        """Return every document of the patient matching `where`."""
        return [Hit(i, d.text, dict(d.metadata)) for i, d in self._matching(patient_id, where)]

    def delete(self, patient_id: str, where: Where) -> int:
        """Delete the patient's documents matching `where`; return how many."""
        with self._lock:
            doomed = [i for i, _ in self._matching(patient_id, where)]
            patient = self._data.get(patient_id)
            if patient is not None and doomed:
                for doc_id in doomed:
                    patient.docs.pop(doc_id, None)
                patient.changed()
            return len(doomed)

    def drop(self, patient_id: str) -> int:
        """Delete everything of one patient; return how many documents there were."""
        require_patient_id(patient_id)
        with self._lock:
            patient = self._data.pop(patient_id, None)
            return len(patient.docs) if patient else 0

    def count(self, patient_id: str) -> int:
        """Return how many documents the patient has."""
        require_patient_id(patient_id)
        with self._lock:
            patient = self._data.get(patient_id)
            return len(patient.docs) if patient else 0
