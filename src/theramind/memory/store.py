"""The chroma-backed vector index: one cosine collection per patient.

Why one collection per patient rather than one shared collection with a `where` filter:
isolation is structural (a query physically cannot reach another patient's vectors, and
forgetting a patient is dropping their collection), and recall latency and quality do not
degrade with other patients' data the way a filtered HNSW search over a shared index can.
The patient id is still stored in every document's metadata and every read still filters on
it, and the service re-checks it on the way out, so isolation holds even if a name collided.

An embedded store answers reads of a small collection from a copy in this process (`_Mirror`):
a chroma query costs milliseconds of CPU however few documents a collection holds, a numpy
search over a patient's few hundred vectors a fraction of one. A copy is trusted for a few
seconds; then a read compares the collection's count with the copy's and reloads the copy when
another process changed it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import chromadb
import numpy as np
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import NotFoundError
from chromadb.utils.embedding_functions import register_embedding_function

from theramind.config import MemorySettings
from theramind.errors import ConfigError
from theramind.memory.chroma_files import fresh_stores, remove_dropped, segment_dirs
from theramind.memory.embeddings import (
    ENGLISH_MODEL,
    Embedder,
    HashingEmbedder,
    get_embedder,
    normalize_rows,
)
from theramind.memory.index import Hit, InMemoryIndex
from theramind.memory.scope import Where, require_patient_id

logger = logging.getLogger(__name__)

COLLECTION_PREFIX = "tm-patient-"
_META_PATIENT = "theramind_patient_id"
_META_EMBEDDER = "theramind_embedder"
MIRROR_PATIENT_ROWS = 2_000
"""A collection with more documents than this is searched in chroma, not copied."""
MIRROR_ROWS = 100_000
"""Documents copied in one process at most (about 200 MB of 512-number vectors); the patients
read least recently are dropped first."""
MIRROR_TTL_S = 10.0
"""How long a copy is trusted without asking chroma (as long as a turn memory is held)."""
T = TypeVar("T")
Known = Literal["copied", "missing", "large"]


@register_embedding_function
class ChromaEmbeddingFunction(EmbeddingFunction[Documents]):
    """Adapts a TheraMind embedder to chroma, so chroma never loads its own ONNX model."""

    def __init__(self, embedder: Embedder) -> None:
        """Wrap an embedder."""
        self._embedder = embedder

    def __call__(self, input: Documents) -> Embeddings:
        """Embed documents with the wrapped embedder."""
        return list(self._embedder.embed(list(input)))

    @staticmethod
    def name() -> str:
        """Name this embedding function in chroma's registry."""
        return "theramind"

    def get_config(self) -> dict[str, Any]:
        """Describe the wrapped embedder so chroma can persist it."""
        model = getattr(self._embedder, "model_name", None)
        return {"embedder": self._embedder.name, "model": model}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ChromaEmbeddingFunction:
        """Rebuild from a persisted config (the model itself loads lazily)."""
        name = str(config.get("embedder", ""))
        if name.startswith("hashing:"):
            _, dim, ngram = name.split(":")
            return ChromaEmbeddingFunction(HashingEmbedder(int(dim), ngram=int(ngram)))
        return ChromaEmbeddingFunction(get_embedder(config.get("model") or ENGLISH_MODEL))

    def default_space(self) -> str:  # type: ignore[override]
        """Use cosine space."""
        return "cosine"

    def supported_spaces(self) -> list[str]:  # type: ignore[override]
        """Support cosine space only (similarity = 1 - distance)."""
        return ["cosine"]


def ensure_database(settings: MemorySettings) -> None:
    """Create the configured database on a chroma server when it does not exist yet."""
    admin = chromadb.AdminClient(
        ChromaSettings(
            chroma_api_impl="chromadb.api.fastapi.FastAPI",
            chroma_server_host=settings.host,
            chroma_server_http_port=settings.port,
            anonymized_telemetry=False,
        )
    )
    name = settings.database or "default_database"
    try:
        admin.get_database(name)
    except Exception:  # chroma raises its own NotFound types, which vary by version
        try:
            admin.create_database(name)
        except Exception:
            # Workers starting together race to create it: one wins, the others find it.
            admin.get_database(name)
    finally:
        _release_admin(admin)


def _release_admin(admin: object) -> None:
    """Let chroma stop an admin client's system (its HTTP pool and threads).

    chroma 1.5's `AdminClient` has no `close`; `Client.close` releases its own admin client
    through the shared-system registry, and this does the same for ours. Each server-backed
    memory opened leaked one system before.
    """
    from chromadb.api.shared_system_client import SharedSystemClient

    release = getattr(SharedSystemClient, "_release_system", None)
    identifier = getattr(admin, "_identifier", None)
    if callable(release) and identifier is not None:
        release(identifier)


@functools.cache
def _chroma_settings() -> ChromaSettings:
    """Chroma's client settings, read from the environment once (a build costs milliseconds).

    Never hand this object to a client: copy it (see `make_client`).
    """
    return ChromaSettings(anonymized_telemetry=False)


def make_client(settings: MemorySettings, path: Path) -> ClientAPI:
    """Return an HTTP client when `settings.host` is set, else an embedded persistent one."""
    # A copy for each client: chroma's client constructors write the path, the server and the
    # API implementation into the settings object they are given.
    chroma_settings = _chroma_settings().model_copy(deep=True)
    if settings.host:
        logger.info("memory: chroma server at %s:%s", settings.host, settings.port)
        if settings.database:
            ensure_database(settings)
            return chromadb.HttpClient(
                host=settings.host,
                port=settings.port,
                settings=chroma_settings,
                database=settings.database,
            )
        return chromadb.HttpClient(host=settings.host, port=settings.port, settings=chroma_settings)
    path.mkdir(parents=True, exist_ok=True)
    logger.info("memory: embedded chroma at %s", path)
    created = fresh_stores.prepare(path)
    client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)
    if created:
        fresh_stores.learn(path)
    return client


def collection_name(patient_id: str) -> str:
    """Return the collection name of a patient (a hash: ids may hold characters chroma refuses)."""
    digest = hashlib.sha256(require_patient_id(patient_id).encode("utf-8")).hexdigest()
    return f"{COLLECTION_PREFIX}{digest[:40]}"


def _hits(ids: list[str], docs: Any, metas: Any, sims: list[float] | None = None) -> list[Hit]:
    docs = docs or [""] * len(ids)
    metas = metas or [{}] * len(ids)
    sims = sims or [0.0] * len(ids)
    return [
        Hit(i, d or "", dict(m or {}), float(s))
        for i, d, m, s in zip(ids, docs, metas, sims, strict=True)
    ]


def index_filter(where: Where, patient_id: str) -> Where | None:
    """Drop the patient clause from a query filter: the collection already is that patient's.

    Chroma pre-filters on metadata before a filtered vector search, which costs several times
    the search itself on large collections; the clause adds nothing inside a per-patient
    collection, and the service still checks the patient id of every result.
    """
    clauses = ({"patient_id": {"$eq": patient_id}}, {"patient_id": patient_id})
    if where in clauses:
        return None
    if set(where) == {"$and"}:
        rest = [c for c in where["$and"] if c not in clauses]
        if not rest:
            return None
        return rest[0] if len(rest) == 1 else {"$and": rest}
    return where


class _Mirror:
    """Copies of small per-patient collections, for reads that need no chroma call.

    Under load every chroma call costs about 2 ms of the GIL, however little it returns, and a
    turn reads its patient's memory twice (recall, the near-duplicate check). What the mirror
    knows of a patient's collection (copied, missing or too large to copy) is trusted for
    `ttl_s` after chroma last told it; then a read compares a copy's count again and reloads it
    when another process has written or erased since. So a write by another process is seen
    here within `ttl_s`, as a held turn memory is (a session is leased to one process at a
    time), and this process's own writes are applied to the copy at once. Not thread-safe: the
    index calls it under its lock.
    """

    def __init__(
        self,
        patient_rows: int = MIRROR_PATIENT_ROWS,
        rows: int = MIRROR_ROWS,
        ttl_s: float = MIRROR_TTL_S,
    ) -> None:
        """Copy collections of at most `patient_rows` documents, `rows` in all; trust `ttl_s`."""
        self.patient_rows = patient_rows
        self.rows = rows
        self.ttl_s = ttl_s
        self._docs = InMemoryIndex()
        self._known: OrderedDict[str, tuple[Known, float]] = OrderedDict()
        """Per patient: what chroma last told of the collection, and when (least recent first)."""

    def _is(self, patient_id: str, known: Known) -> bool:
        """Whether chroma told `known` of the patient's collection within `ttl_s`."""
        entry = self._known.get(patient_id)
        if entry is None or entry[0] != known or time.monotonic() - entry[1] >= self.ttl_s:
            return False
        self._known.move_to_end(patient_id)
        return True

    def trusted(self, patient_id: str) -> bool:
        """Whether the patient's copy was in step within `ttl_s`."""
        return self._is(patient_id, "copied")

    def missing(self, patient_id: str) -> bool:
        """Whether the patient's collection was found missing within `ttl_s`."""
        return self._is(patient_id, "missing")

    def large(self, patient_id: str) -> bool:
        """Whether the patient's collection was found too large to copy within `ttl_s`."""
        return self._is(patient_id, "large")

    def _knows(self, patient_id: str) -> Known | None:
        """What the mirror last heard of the patient's collection, however long ago."""
        entry = self._known.get(patient_id)
        return entry[0] if entry else None

    def _tell(self, patient_id: str, known: Known) -> None:
        self._known[patient_id] = (known, time.monotonic())
        self._known.move_to_end(patient_id)

    def mark_missing(self, patient_id: str) -> None:
        """Remember that the patient's collection does not exist."""
        self.forget(patient_id)
        self._tell(patient_id, "missing")

    def created(self, patient_id: str) -> None:
        """The patient's collection exists (again)."""
        if self._knows(patient_id) == "missing":
            del self._known[patient_id]

    def refresh(self, patient_id: str, col: Collection) -> bool:
        """Bring the copy in step with the collection; False (no copy) when it is too large.

        A copy held already is compared by count and reloaded only when that differs; a first
        copy is loaded at once, with one row more than a copy may hold to tell a large one.
        """
        if self._knows(patient_id) == "copied" and self._docs.count(patient_id) == col.count():
            self._tell(patient_id, "copied")
            return True
        self.forget(patient_id)
        res = col.get(include=["embeddings", "documents", "metadatas"], limit=self.patient_rows + 1)
        ids = list(res["ids"])
        if len(ids) > self.patient_rows:
            self._tell(patient_id, "large")
            return False
        if ids:
            embeddings = res.get("embeddings")
            if embeddings is None or len(embeddings) != len(ids):
                return False
            docs = res.get("documents") or [""] * len(ids)
            metas = res.get("metadatas") or [{}] * len(ids)
            self._docs.upsert(
                patient_id,
                ids,
                np.asarray(embeddings, dtype=np.float32),
                [d or "" for d in docs],
                [dict(m or {}) for m in metas],
            )
        self._tell(patient_id, "copied")
        self._evict()
        return True

    def _evict(self) -> None:
        copied = self.copied()
        total = sum(self._docs.count(p) for p in copied)
        for oldest in copied[:-1]:  # least recently read first; the newest copy stays
            if total <= self.rows:
                break
            total -= self._docs.count(oldest)
            self.forget(oldest)

    def upserted(
        self,
        patient_id: str,
        ids: list[str],
        rows: np.ndarray,
        texts: list[str],
        metadatas: list[dict[str, Any]],
    ) -> None:
        """Apply an upsert chroma took (a copy not trusted now is dropped, to reload later)."""
        self.created(patient_id)
        if not self.trusted(patient_id):
            self.forget(patient_id)
            return
        self._docs.upsert(patient_id, ids, rows, texts, metadatas)
        self._evict()

    def deleted(self, patient_id: str, where: Where) -> None:
        """Apply a deletion chroma took of what `where` matched."""
        if self.trusted(patient_id):
            self._docs.delete(patient_id, where)
        else:
            self.forget(patient_id)

    def forget(self, patient_id: str) -> None:
        """Drop what the mirror holds or knows of the patient."""
        self._known.pop(patient_id, None)
        self._docs.drop(patient_id)

    def copied(self) -> list[str]:
        """The patients whose collections are copied, least recently read first."""
        return [p for p, (known, _) in self._known.items() if known == "copied"]

    def query_many(
        self, patient_id: str, vectors: np.ndarray, where: Where, limit: int
    ) -> list[list[Hit]]:
        """Search the patient's copy (the caller made sure it is in step)."""
        return self._docs.query_many(patient_id, vectors, where, limit)

    def get(self, patient_id: str, where: Where) -> list[Hit]:
        """List the patient's copied documents matching `where`."""
        return self._docs.get(patient_id, where)


class ChromaIndex:
    """Per-patient chroma collections in cosine space; every client call holds one lock."""

    def __init__(
        self,
        client: ClientAPI,
        embedder: Embedder,
        path: Path | None = None,
        *,
        mirror: bool | None = None,
        reopen: Callable[[], ClientAPI] | None = None,
    ) -> None:
        """Use a chroma client; `embedder` is passed to every collection get or create.

        `path` is the folder of an embedded client's files, compacted when a patient is dropped.
        `mirror` (default: for an embedded client) answers reads of small collections from a
        copy in this process. A chroma server's collections are written by many workers, and a
        document replaced in place leaves the count unchanged, so they are always read there.
        `reopen` makes the index own its client: `close` releases it, and a later call opens
        a new one with `reopen` (a client given without it is the caller's to close).
        """
        self._client: ClientAPI | None = client
        self._reopen = reopen
        self._path = path
        self._embedder = embedder
        self._ef = ChromaEmbeddingFunction(embedder)
        self._collections: dict[str, Collection] = {}
        self._lock = threading.RLock()
        self._mirror = _Mirror() if (path is not None if mirror is None else mirror) else None

    def _copy(self, patient_id: str, col: Collection) -> _Mirror | None:
        """Return the mirror when it holds the patient's collection as it is now (loading it)."""
        mirror = self._mirror
        if mirror is None:
            return None
        if mirror.trusted(patient_id):
            return mirror
        if not mirror.large(patient_id) and mirror.refresh(patient_id, col):
            return mirror
        return None

    @classmethod
    def from_settings(cls, settings: MemorySettings, path: Path, embedder: Embedder) -> ChromaIndex:
        """Open the store named by the memory settings."""
        return cls(
            make_client(settings, path),
            embedder,
            None if settings.host else path,
            reopen=lambda: make_client(settings, path),
        )

    def _open(self) -> ClientAPI:
        """The chroma client, opened again if `close` released it."""
        with self._lock:
            if self._client is None:
                assert self._reopen is not None  # only an owned client is ever released
                logger.info("memory: opening the chroma store again after close")
                self._client = self._reopen()
            return self._client

    def close(self) -> None:
        """Release an owned client: chroma keeps a store open (threads, files) until then.

        Each closed app left about 6 threads and 12 open files behind, so a run of many
        patients, each with its own app, ran out of them. Safe to call twice; a later call
        to the index opens the store again.
        """
        with self._lock:
            client = self._client
            if self._reopen is None or client is None:
                return
            self._client = None
            self._collections.clear()
            if self._mirror is not None:
                self._mirror = _Mirror()
        close = getattr(client, "close", None)  # chroma's typed interface does not name it
        if callable(close):
            close()

    def _check(self, collection: Collection, patient_id: str) -> Collection:
        meta = collection.metadata or {}
        if meta.get(_META_PATIENT) != patient_id:
            raise ConfigError(
                f"memory: collection {collection.name} does not belong to this patient"
            )
        stored = meta.get(_META_EMBEDDER)
        if stored != self._embedder.name:
            raise ConfigError(
                f"memory: patient data was embedded with {stored!r} but the configured embedder "
                f"is {self._embedder.name!r}; set memory.embedding_model back or use a new path"
            )
        return collection

    def _collection(
        self, patient_id: str, *, create: bool, look: bool = False
    ) -> Collection | None:
        """Return the patient's collection (creating it with `create`), None if there is none.

        A collection the mirror saw missing moments ago is not looked up again, unless `look`
        (an erasure must find a collection another process has just created).
        """
        name = collection_name(patient_id)
        with self._lock:
            cached = self._collections.get(name)
            if cached is not None:
                return cached
            mirror = self._mirror
            if not (create or look) and mirror is not None and mirror.missing(patient_id):
                return None
            if create:
                col = self._open().get_or_create_collection(
                    name,
                    configuration={"hnsw": {"space": "cosine"}},
                    metadata={_META_PATIENT: patient_id, _META_EMBEDDER: self._embedder.name},
                    embedding_function=self._ef,  # type: ignore[arg-type]
                )
            else:
                try:
                    col = self._open().get_collection(name, embedding_function=self._ef)  # type: ignore[arg-type]
                except NotFoundError:
                    if mirror is not None:
                        mirror.mark_missing(patient_id)
                    return None
            if mirror is not None:
                mirror.created(patient_id)
            self._collections[name] = self._check(col, patient_id)
            return col

    def _run(
        self,
        patient_id: str,
        create: bool,
        action: Callable[[Collection], T],
        default: T,
        *,
        look: bool = False,
    ) -> T:
        """Run `action` on the patient's collection under the lock (retry once if it vanished)."""
        with self._lock:
            for attempt in (1, 2):
                col = self._collection(patient_id, create=create, look=look)
                if col is None:
                    return default
                try:
                    return action(col)
                except NotFoundError:
                    # Dropped by another client of the same store: forget it and look again.
                    self._collections.pop(col.name, None)
                    if self._mirror is not None:
                        self._mirror.forget(patient_id)
                    if attempt == 2:
                        raise
            return default

    def upsert(
        self,
        patient_id: str,
        ids: list[str],
        vectors: np.ndarray,
        texts: list[str],
        metadatas: list[dict[str, Any]],
    ) -> None:
        """Insert or replace documents of one patient."""
        if not ids:
            return
        rows = normalize_rows(vectors)

        def action(col: Collection) -> None:
            col.upsert(ids=ids, embeddings=rows, documents=texts, metadatas=metadatas)  # type: ignore[arg-type]
            if self._mirror is not None:
                self._mirror.upserted(patient_id, ids, rows, texts, metadatas)

        self._run(patient_id, True, action, None)

    def query(self, patient_id: str, vector: np.ndarray, where: Where, limit: int) -> list[Hit]:
        """Return up to `limit` nearest documents matching `where`, most similar first."""
        return self.query_many(patient_id, normalize_rows(vector)[:1], where, limit)[0]

    def query_many(
        self, patient_id: str, vectors: np.ndarray, where: Where, limit: int
    ) -> list[list[Hit]]:
        """Return, for each row of `vectors`, its nearest documents (one chroma query)."""
        queries = normalize_rows(vectors)
        empty: list[list[Hit]] = [[] for _ in queries]
        if limit <= 0 or not len(queries):
            return empty
        narrowed = index_filter(where, patient_id)

        def action(col: Collection) -> list[list[Hit]]:
            mirror = self._copy(patient_id, col)
            if mirror is not None:
                return mirror.query_many(patient_id, queries, where, limit)
            res = col.query(
                query_embeddings=queries,
                n_results=limit,
                where=narrowed,
                include=["documents", "metadatas", "distances"],
            )
            dists, docs, metas = res["distances"], res["documents"], res["metadatas"]
            return [
                _hits(
                    ids,
                    docs[n] if docs else None,
                    metas[n] if metas else None,
                    [1.0 - float(d) for d in dists[n]] if dists else None,
                )
                for n, ids in enumerate(res["ids"])
            ]

        return self._run(patient_id, False, action, empty)

    def get(self, patient_id: str, where: Where) -> list[Hit]:
        """Return every document of the patient matching `where`."""

        def action(col: Collection) -> list[Hit]:
            mirror = self._copy(patient_id, col)
            if mirror is not None:
                return mirror.get(patient_id, where)
            res = col.get(where=where, include=["documents", "metadatas"])
            return _hits(res["ids"], res.get("documents"), res.get("metadatas"))

        return self._run(patient_id, False, action, [])

    def delete(self, patient_id: str, where: Where) -> int:
        """Delete the patient's documents matching `where`; return how many."""

        def action(col: Collection) -> int:
            ids = col.get(where=where, include=[])["ids"]
            if ids:
                col.delete(ids=ids)
                if self._mirror is not None:
                    self._mirror.deleted(patient_id, where)
            return len(ids)

        return self._run(patient_id, False, action, 0, look=True)

    def drop(self, patient_id: str) -> int:
        """Delete the patient's collection; return how many documents it held."""

        def action(col: Collection) -> int:
            n = col.count()
            dirs = segment_dirs(self._path, str(col.id)) if self._path else []
            self._open().delete_collection(col.name)
            self._collections.pop(col.name, None)
            if self._mirror is not None:
                self._mirror.mark_missing(patient_id)
            if self._path is not None:
                remove_dropped(self._path, dirs)
            return n

        return self._run(patient_id, False, action, 0, look=True)

    def count(self, patient_id: str) -> int:
        """Return how many documents the patient has."""
        return self._run(patient_id, False, lambda col: col.count(), 0, look=True)
