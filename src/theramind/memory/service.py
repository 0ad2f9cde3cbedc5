"""VectorMemory: the one service the graphs call to remember, recall and forget."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

from theramind.config import MemorySettings, Settings
from theramind.errors import InputError
from theramind.memory.embeddings import Embedder, VectorCache, make_embedder, normalize_rows
from theramind.memory.entries import Entry, Held, PendingWrites, holdable, novel
from theramind.memory.index import Hit, InMemoryIndex, VectorIndex
from theramind.memory.recall import embedding_text, fit_budget, item_from_hit, rank
from theramind.memory.scope import (
    Namespace,
    Scope,
    Where,
    matches,
    require_kind,
    require_patient_id,
)
from theramind.memory.writer import BackgroundWriter
from theramind.records import Formulation, MemoryItem, MemoryKind, SessionOutcome, utcnow
from theramind.text import shorten

logger = logging.getLogger(__name__)

_RESERVED = frozenset({"patient_id", "kind", "key", "session_no", "turn", "created_at"})
_FORMULATION_CHARS = 400
DEFAULT_MIN_SIMILARITY = 0.35
"""Recall threshold for an embedder that names none (calibrated on MiniLM)."""
HOLD_TURNS = 16
"""Turn memories of one patient held in this process before they are written together."""
HOLD_S = 10.0
"""The longest a held turn memory waits for its write, in seconds."""


def _checked(
    entries: Sequence[tuple[MemoryKind, str]], session_no: int, turn: int | None = None
) -> list[Entry]:
    """Return the entries with kinds checked and texts stripped (InputError on a bad one)."""
    return [
        Entry(require_kind(kind), _clean_text(text), int(session_no), turn)
        for kind, text in entries
    ]


def _clean_text(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InputError("memory text must be a non-empty string")
    return text.strip()


def decision_text(outcome: SessionOutcome) -> str:
    """Render the session's therapy decision as one remembered line."""
    d = outcome.decision
    previous = " + ".join(outcome.previous_therapies) or "none"
    return (
        f"{d.action} therapy: {' + '.join(d.therapies)} (phase {d.phase}); "
        f"previous {previous} was {outcome.efficacy.verdict.replace('_', ' ')}. {d.reason}"
    )


def formulation_text(formulation: Formulation) -> str:
    """Render a short formulation snapshot, or '' when it holds nothing yet."""
    parts = formulation.sections(criteria=False)
    body = [f"{name}: {'; '.join(values)}" for name, values in parts if values]
    if not body:
        return ""
    return shorten(" | ".join([*body, f"severity: {formulation.severity}"]), _FORMULATION_CHARS)


class VectorMemory:
    """Namespaced, per-patient vector memory with bounded, ranked recall."""

    def __init__(
        self, index: VectorIndex, embedder: Embedder, settings: MemorySettings | None = None
    ) -> None:
        """Serve memory from an index, embedding with `embedder`, ranking by `settings`."""
        self.index = index
        self.embedder = embedder
        self.settings = settings or MemorySettings()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._cache = VectorCache()
        self._writer = BackgroundWriter()
        self._handled: dict[tuple[str, int], set[int]] = {}
        """Turns whose disclosure this process wrote or skipped as a near-duplicate, per
        session: the close's backfill need not embed them again."""
        self._pending = PendingWrites()
        self._held: dict[str, list[Held]] = {}
        """Per patient, turn memories checked and embedded but not yet in the index: recall
        searches them too, and the next write, read, flush or close writes them (one upsert
        for a session's turns instead of one per turn)."""
        self._timers: dict[str, threading.Timer] = {}
        self._closed = False
        self.hold_turns = HOLD_TURNS
        self.hold_s = HOLD_S

    @property
    def min_similarity(self) -> float:
        """Return the recall threshold: the setting, else the embedder's calibrated value."""
        if self.settings.min_similarity is not None:
            return self.settings.min_similarity
        return float(getattr(self.embedder, "min_similarity", DEFAULT_MIN_SIMILARITY))

    # --- scoped primitives: both APIs below read and write only through these ----------------

    def _enter(self, scope: Scope, *, commit: bool = True) -> Scope:
        """Open a scope whose patient id is already checked.

        Wait for the patient's queued writes,
        so a read or write never overtakes them.

        With `commit`, held turn memories are written to the index too (recall, which
        searches them where they are, and the writes, which take them along, pass False).
        """
        self._writer.flush(scope.patient_id)
        if commit:
            self._commit(scope.patient_id)
        return scope

    def _commit(self, patient_id: str) -> None:
        """Write the patient's held turn memories to the index in one upsert."""
        with self._patient_lock(patient_id):
            held = self._held.pop(patient_id, [])
            if held:
                self._upsert_held(patient_id, held)

    def _upsert_held(self, patient_id: str, held: list[Held]) -> None:
        """Upsert held rows (the patient's lock is held); on failure keep them held."""
        timer = self._timers.pop(patient_id, None)
        if timer is not None:
            timer.cancel()
        try:
            self.index.upsert(
                patient_id,
                [h.id for h in held],
                np.stack([h.vector for h in held]),
                [h.text for h in held],
                [dict(h.metadata) for h in held],
            )
        except Exception:
            self._held[patient_id] = held + self._held.get(patient_id, [])
            if not self._closed:
                self._start_timer(patient_id, self.hold_s)
            raise

    def _hold_due(self, patient_id: str) -> None:
        """Timer: write a patient's hold once its oldest entry has waited `hold_s`."""
        with self._patient_lock(patient_id):
            self._timers.pop(patient_id, None)
            held = self._held.get(patient_id)
            if not held:
                return
            wait = self.hold_s - (time.monotonic() - held[0].since)
            if wait > 0.01 and not self._closed:
                self._start_timer(patient_id, wait)
                return
        self._writer.submit(patient_id, self._commit, patient_id)

    def _start_timer(self, patient_id: str, delay: float) -> None:
        timer = threading.Timer(delay, self._hold_due, args=(patient_id,))
        timer.daemon = True
        self._timers[patient_id] = timer
        timer.start()

    def _held_hits(self, patient_id: str, vector: np.ndarray, where: Where) -> list[Hit]:
        """Return the patient's held turn memories that match `where`, scored against `vector`."""
        with self._patient_lock(patient_id):
            held = list(self._held.get(patient_id, ()))
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        return [
            Hit(h.id, h.text, dict(h.metadata), float(h.vector @ query))
            for h in held
            if matches(dict(h.metadata), where)
        ]

    def _items(self, scope: Scope, where: Where) -> list[MemoryItem]:
        """The scope's items matching `where`, in the index's order."""
        return [
            item_from_hit(h)
            for h in self._own(scope.patient_id, self.index.get(scope.patient_id, where))
        ]

    def _nearest(self, scope: Scope, vector: np.ndarray, where: Where, limit: int) -> list[Hit]:
        """The scope's `limit` items nearest to `vector` among those matching `where`."""
        found = self.index.query(scope.patient_id, vector, where, limit)
        return self._own(scope.patient_id, found + self._held_hits(scope.patient_id, vector, where))

    def _erase(self, scope: Scope, where: Where) -> int:
        """Delete the scope's items matching `where`; return how many."""
        with self._patient_lock(scope.patient_id):
            return self.index.delete(scope.patient_id, where)

    def remember_soon(
        self,
        patient_id: str,
        entries: Sequence[tuple[MemoryKind, str]],
        *,
        session_no: int,
        turn: int | None = None,
    ) -> None:
        """Store memories in the background (in order), without delaying the caller.

        Entries of one patient that queue while the writer is busy are written together (one
        embedding pass, one search, one upsert). The next call that touches this patient's
        memory waits for them; `flush` or `close` waits for all. Bad input raises here; a
        failed write is logged, not raised.
        """
        require_patient_id(patient_id)
        clean = _checked(entries, session_no, turn)
        if clean and self._pending.add(patient_id, clean):
            self._writer.submit(patient_id, self._drain, patient_id)

    def _drain(self, patient_id: str) -> None:
        """Write every entry queued for the patient so far, as one batch."""
        entries = self._pending.take(patient_id)
        if entries:
            self._write(patient_id, entries, hold=True)

    def _commit_all(self) -> None:
        """Write every patient's hold; a failed write is logged (and stays held), not raised."""
        for patient_id in list(self._held):
            try:
                self._commit(patient_id)
            except Exception as exc:
                logger.warning("memory write for %s failed: %s", patient_id, exc)

    def flush(self) -> None:
        """Wait for every queued background write and write every held turn memory."""
        self._writer.flush()
        self._commit_all()

    def close(self) -> None:
        """Finish queued and held writes, stop the background writer, release the index.

        Later writes run inline (an index that released its store opens it again).
        """
        self._writer.close()
        with self._locks_guard:
            self._closed = True
        for timer in list(self._timers.values()):
            timer.cancel()
        self._commit_all()
        release = getattr(self.index, "close", None)  # indexes holding no resources have none
        if callable(release):
            release()

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._cache.embed(self.embedder, texts)

    def _patient_lock(self, patient_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(patient_id, threading.Lock())

    def _own(self, patient_id: str, hits: Sequence[Hit]) -> list[Hit]:
        """Drop (and log) anything that is not this patient's: a last isolation check."""
        own = [h for h in hits if h.metadata.get("patient_id") == patient_id]
        if len(own) != len(hits):
            logger.error("memory: dropped %d foreign items for one patient", len(hits) - len(own))
        return own

    # --- namespaced primitives ---------------------------------------------------------------

    def put(
        self,
        namespace: Namespace,
        key: str,
        text: str,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Store (or replace) `text` under `key` in ("patients", id, kind); no deduplication."""
        scope = self._enter(Scope.of(namespace), commit=False)
        if scope.kind is None:
            raise InputError("put needs a namespace with a kind: ('patients', id, kind)")
        if not isinstance(key, str) or not key.strip():
            raise InputError("memory key must be a non-empty string")
        meta = dict(metadata or {})
        turn = meta.get("turn")
        entry = Entry(
            scope.kind,
            _clean_text(text),
            int(meta.get("session_no", 0)),
            int(turn) if turn is not None else None,
            key,
        )
        self._write(scope.patient_id, [entry], extra=meta, dedup=False)

    def get(self, namespace: Namespace, key: str) -> MemoryItem | None:
        """Return the item stored under `key` in the namespace, or None."""
        scope = self._enter(Scope.of(namespace))
        items = self._items(scope, scope.where(key=key))
        return items[0] if items else None

    def search(self, namespace: Namespace, query: str, limit: int = 10) -> list[MemoryItem]:
        """Return the items of the namespace most similar to `query` (no threshold, no budget)."""
        scope = self._enter(Scope.of(namespace))
        if not query.strip() or limit <= 0:
            return []
        hits = self._nearest(scope, self._embed([query]), scope.where(), limit)
        return [item_from_hit(h) for h in hits]

    def delete(self, namespace: Namespace, key: str) -> bool:
        """Delete the item under `key` in the namespace; return whether there was one."""
        scope = self._enter(Scope.of(namespace))
        return self._erase(scope, scope.where(key=key)) > 0

    # --- the service API the graphs call: the same primitives, in the patient's whole scope ---

    def _write(
        self,
        patient_id: str,
        entries: Sequence[Entry],
        *,
        extra: Mapping[str, Any] | None = None,
        dedup: bool = True,
        hold: bool = False,
    ) -> list[str | None]:
        """Store the entries that duplicate nothing: one embedding pass, search and upsert.

        With `hold`, turn disclosures wait in this process (`_held`) and are written with the
        patient's next write instead (the hold is bounded by `hold_turns` and `hold_s`).
        """
        require_patient_id(patient_id)
        if not entries:
            return []
        vectors = self._embed([embedding_text(e.kind, e.text) for e in entries])
        user_meta = {
            k: v
            for k, v in (extra or {}).items()
            if k not in _RESERVED and isinstance(v, str | int | float | bool)
        }
        written: list[str | None] = []
        fresh: list[Held] = []
        now = time.monotonic()
        with self._patient_lock(patient_id):
            held = self._held.get(patient_id, [])
            threshold = self.settings.dedup_similarity
            keep = novel(self.index, patient_id, entries, vectors, threshold) if dedup else None
            if keep is not None and held:  # nor may it repeat a held turn memory
                for i, entry in enumerate(entries):
                    keep[i] = keep[i] and not any(
                        h.metadata.get("kind") == entry.kind
                        and float(h.vector @ vectors[i]) >= threshold
                        for h in held
                    )
            for i, entry in enumerate(entries):
                if keep is not None and not keep[i]:
                    logger.debug("memory: skipped a near-duplicate %s", entry.kind)
                    self._mark_handled(patient_id, entry.session_no, entry.kind, entry.turn)
                    written.append(None)
                    continue
                key = entry.key or uuid.uuid4().hex
                meta: dict[str, Any] = {
                    **user_meta,
                    "patient_id": patient_id,
                    "kind": entry.kind,
                    "key": key,
                    "session_no": entry.session_no,
                    "created_at": utcnow().isoformat(),
                }
                if entry.turn is not None:
                    meta["turn"] = int(entry.turn)
                fresh.append(Held(f"{entry.kind}/{key}", vectors[i], entry.text, meta, now))
                self._mark_handled(patient_id, entry.session_no, entry.kind, entry.turn)
                written.append(key)
            if not fresh and (hold or not held):
                return written
            may_hold = (
                hold
                and not self._closed
                and all(holdable(e) for e, k in zip(entries, written, strict=True) if k)
                and len(held) + len(fresh) < self.hold_turns
                and not (held and now - held[0].since >= self.hold_s)
            )
            if may_hold:
                self._held.setdefault(patient_id, []).extend(fresh)
                if patient_id not in self._timers:
                    self._start_timer(patient_id, self.hold_s)
            else:
                self._held.pop(patient_id, None)
                self._upsert_held(patient_id, held + fresh)
        return written

    def _mark_handled(
        self, patient_id: str, session_no: int, kind: MemoryKind, turn: int | None
    ) -> None:
        if turn is not None and kind == "disclosure":
            self._handled.setdefault((patient_id, int(session_no)), set()).add(int(turn))

    def remember(
        self,
        patient_id: str,
        kind: MemoryKind,
        text: str,
        *,
        session_no: int,
        turn: int | None = None,
    ) -> str | None:
        """Store one memory; return its id, or None if a near-duplicate is already stored."""
        return self.remember_many(patient_id, [(kind, text)], session_no=session_no, turn=turn)[0]

    def remember_many(
        self,
        patient_id: str,
        entries: Sequence[tuple[MemoryKind, str]],
        *,
        session_no: int,
        turn: int | None = None,
    ) -> list[str | None]:
        """Store several memories with one embedding batch; None marks each skipped duplicate."""
        self._enter(Scope(patient_id), commit=False)
        return self._write(patient_id, _checked(entries, session_no, turn))

    def backfill_turns(
        self, patient_id: str, session_no: int, said: Sequence[tuple[int, str]]
    ) -> int:
        """Store each (turn, patient message) of a session that memory lacks; return how many.

        Turn memories are written after the reply, so a process killed in between loses one.
        The session's stored turns are the record: at close they fill any gap (near-duplicates
        are still skipped, as when the turn was first remembered).
        """
        self._enter(Scope(patient_id), commit=False)
        handled = self._handled.pop((patient_id, int(session_no)), set())
        said = [(turn, text) for turn, text in said if turn not in handled]
        if not said:
            return 0
        where = Scope(patient_id, "disclosure").where(from_session=session_no)
        stored = {
            int(h.metadata["turn"])
            for h in self.index.get(patient_id, where)
            if h.metadata.get("session_no") == session_no and h.metadata.get("turn") is not None
        }
        missing = [
            Entry("disclosure", text.strip(), session_no, turn)
            for turn, text in said
            if turn not in stored and isinstance(text, str) and text.strip()
        ]
        added = sum(1 for key in self._write(patient_id, missing) if key is not None)
        self._handled.pop((patient_id, int(session_no)), None)
        if added:
            logger.info("memory: restored %d turn memories of session %d", added, session_no)
        return added

    def remember_intake(self, patient_id: str, facts: Sequence[str]) -> int:
        """Replace the patient's intake memories (what was known before session 1) with `facts`.

        Keys are positional, so seeding again after a profile edit overwrites, never piles up.
        Returns how many facts are stored.
        """
        intake = self._enter(Scope(patient_id, "intake"), commit=False)
        clean = [_clean_text(f) for f in facts if isinstance(f, str) and f.strip()]
        with self._patient_lock(patient_id):  # an earlier seeding may still be held
            held = self._held.get(patient_id)
            if held:
                self._held[patient_id] = [h for h in held if h.metadata.get("kind") != "intake"]
        self._erase(intake, intake.where())
        # Held: the intake is written with the session's first turn memories, in one upsert.
        self._write(
            patient_id,
            [Entry("intake", text, 0, None, f"intake-{i}") for i, text in enumerate(clean)],
            dedup=False,
            hold=True,
        )
        return len(clean)

    def query_vector(self, query: str, focus: str = "") -> np.ndarray | None:
        """Return the recall vector: the message's, leaned toward the focus by `focus_weight`.

        The two are embedded apart (and cached), so the message's own vector serves both this
        query and storing the message afterwards. None when both are blank.
        """
        texts = [part.strip() for part in (query or "", focus or "") if part.strip()]
        if not texts:
            return None
        vectors = self._embed(texts)
        if len(texts) == 1:
            return vectors[:1]
        return normalize_rows(vectors[0] + self.settings.focus_weight * vectors[1])

    def recall(
        self,
        patient_id: str,
        query: str,
        *,
        current_session: int,
        focus: str = "",
        k: int | None = None,
        token_budget: int | None = None,
        exclude_session: int | None = None,
        skip: Collection[tuple[int, int]] = (),
    ) -> list[MemoryItem]:
        """Return the patient's relevant memories, best first, within the token budget.

        `skip` names (session, turn) pairs whose words the prompt already holds; they are
        never returned.
        """
        scope = self._enter(Scope(patient_id), commit=False)
        top_k = k if k is not None else self.settings.top_k
        budget = token_budget if token_budget is not None else self.settings.token_budget
        vector = self.query_vector(query, focus) if top_k > 0 and budget > 0 else None
        if vector is None:
            return []
        where = scope.where(exclude_session=exclude_session)
        hits = self._nearest(scope, vector, where, max(4 * top_k, 16) + len(skip))
        ranked = rank(
            hits,
            current_session=current_session,
            min_similarity=self.min_similarity,
            recency_weight=self.settings.recency_weight,
            k=top_k,
            skip=skip,
        )
        return fit_budget(ranked, budget, self.settings.item_tokens)

    def consolidate(self, outcome: SessionOutcome) -> int:
        """Store a closed session's summary, disclosures, decision and formulation; return count."""
        self._enter(Scope(outcome.patient_id), commit=False)
        summary = outcome.summary
        entries: list[tuple[MemoryKind, str]] = []
        if summary.summary.strip():
            entries.append(("summary", summary.summary.strip()))
        entries.extend(("disclosure", f"{s.kind}: {s.text.strip()}") for s in summary.salient)
        if summary.homework.strip():
            entries.append(("disclosure", f"homework: {summary.homework.strip()}"))
        entries.append(("decision", decision_text(outcome)))
        snapshot = formulation_text(outcome.formulation)
        if snapshot:
            entries.append(("formulation", snapshot))
        ids = self._write(outcome.patient_id, _checked(entries, outcome.session_no))
        written = sum(1 for i in ids if i is not None)
        logger.info(
            "memory: consolidated session %d: %d of %d items new",
            outcome.session_no,
            written,
            len(entries),
        )
        return written

    def export_patient(self, patient_id: str) -> list[MemoryItem]:
        """Return every memory of one patient, oldest session first."""
        scope = self._enter(Scope(patient_id))
        items = self._items(scope, scope.where())
        items.sort(key=lambda m: (m.session_no, m.turn if m.turn is not None else -1, m.created_at))
        return items

    def forget_sessions(self, patient_id: str, first: int) -> int:
        """Forget what sessions numbered `first` and later added; return how many items."""
        scope = self._enter(Scope(patient_id))
        return self._erase(scope, scope.where(from_session=first))

    def delete_patient(self, patient_id: str) -> int:
        """Forget everything of one patient; return how many items were deleted."""
        scope = self._enter(Scope(patient_id))
        with self._patient_lock(scope.patient_id):
            removed = self.index.drop(scope.patient_id)
        logger.info("memory: deleted %d items of one patient", removed)
        return removed

    def count(self, patient_id: str) -> int:
        """Return how many memories one patient has."""
        scope = self._enter(Scope(patient_id))
        return self.index.count(scope.patient_id)


def build_memory(settings: Settings, *, embedder: Embedder | None = None) -> VectorMemory:
    """Build the memory service the settings describe (chroma or in-memory backend)."""
    mem = settings.memory
    embedder = embedder or make_embedder(mem.embedding_model)
    index: VectorIndex
    if mem.backend == "inmemory":
        index = InMemoryIndex()
    else:
        from theramind.memory.store import ChromaIndex

        index = ChromaIndex.from_settings(mem, settings.memory_path, embedder)
    return VectorMemory(index, embedder, mem)
