"""Micro-batching for embedders: concurrent callers share one forward pass.

A lock around the model makes sessions queue one text at a time, and a forward pass for one
short text costs nearly as much as for a dozen. Here a caller that finds the model idle runs
the pass for every text waiting at that moment (its own and other sessions'); callers that
arrive meanwhile queue, and the next pass takes them all. A lone caller pays no delay.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from theramind.memory.embeddings import Embedder

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Request:
    texts: list[str]
    vectors: np.ndarray | None = None
    error: BaseException | None = None
    done: bool = False
    rows: list[int] = field(default_factory=list)


class BatchingEmbedder:
    """Pool the texts of concurrent `embed` calls into one call of the wrapped embedder.

    Results are exactly what the wrapped embedder returns for each text; a failed pass fails
    every call it served. An optional cache (most recently used texts) spares a pass for a text
    embedded moments ago, as a turn's message is by recall and again when it is stored.
    """

    def __init__(self, inner: Embedder, *, max_texts: int = 64, cache_size: int = 512) -> None:
        """Wrap `inner`; one pass takes at most `max_texts` texts; cache `cache_size` vectors."""
        self.inner = inner
        self.max_texts = max(1, max_texts)
        self.cache_size = max(0, cache_size)
        self._cond = threading.Condition()
        self._queue: list[_Request] = []
        self._busy = False
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.passes = 0
        self.texts_embedded = 0

    @property
    def name(self) -> str:
        """Identify the wrapped embedder's vector space."""
        return self.inner.name

    @property
    def model_name(self) -> str | None:
        """Return the wrapped embedder's configured model name, if it has one."""
        return getattr(self.inner, "model_name", None)

    def __getattr__(self, item: str) -> object:
        """Expose the wrapped embedder's other attributes (its loaded model, for one)."""
        if item == "inner":
            raise AttributeError(item)
        return getattr(self.inner, item)

    def _cached(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        found = {t: self._cache[t] for t in texts if t in self._cache}
        for text in found:
            self._cache.move_to_end(text)
        return found

    def _store(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        if not self.cache_size:
            return
        for text, vector in zip(texts, vectors, strict=True):
            self._cache[text] = vector
            self._cache.move_to_end(text)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return one normalised row per text, embedded together with any other waiting texts."""
        texts = list(texts)
        if not texts:
            return self.inner.embed([])
        with self._cond:
            found = self._cached(texts)
            missing = list(dict.fromkeys(t for t in texts if t not in found))
            if not missing:
                return np.stack([found[t] for t in texts])
            request = _Request(missing)
            self._queue.append(request)
            while not request.done:
                if self._busy:
                    self._cond.wait()
                    continue
                batch = self._take()
                self._busy = True
                self._cond.release()
                try:
                    self._run(batch)
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()
            if request.error is not None:
                raise request.error
            assert request.vectors is not None
            fresh = dict(zip(missing, request.vectors, strict=True))
        return np.stack([found[t] if t in found else fresh[t] for t in texts])

    def _take(self) -> list[_Request]:
        """Pop the waiting requests that fit one pass (always at least the first)."""
        batch: list[_Request] = []
        size = 0
        while self._queue and (not batch or size + len(self._queue[0].texts) <= self.max_texts):
            request = self._queue.pop(0)
            batch.append(request)
            size += len(request.texts)
        return batch

    def _run(self, batch: list[_Request]) -> None:
        """Embed a batch's distinct texts in one pass and hand each request its rows."""
        unique: dict[str, int] = {}
        for request in batch:
            request.rows = [unique.setdefault(t, len(unique)) for t in request.texts]
        texts = list(unique)
        try:
            vectors = self.inner.embed(texts)
        except BaseException as exc:  # every waiting caller gets the failure, none hangs
            for request in batch:
                request.error, request.done = exc, True
            return
        with self._cond:
            self.passes += 1
            self.texts_embedded += len(texts)
            self._store(texts, vectors)
        for request in batch:
            request.vectors = vectors[request.rows]
            request.done = True
