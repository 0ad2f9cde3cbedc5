"""Vector memory: namespaced per-patient storage with bounded, ranked recall."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from theramind.memory.embeddings import (
    Embedder,
    HashingEmbedder,
    SentenceTransformerEmbedder,
    get_embedder,
    make_embedder,
)
from theramind.memory.index import Hit, InMemoryIndex, VectorIndex
from theramind.memory.recall import estimate_tokens, format_memories, format_memory
from theramind.memory.scope import Namespace, Scope, require_patient_id, where_filter
from theramind.memory.service import VectorMemory, build_memory

if TYPE_CHECKING:
    from theramind.memory.store import ChromaEmbeddingFunction, ChromaIndex

__all__ = [
    "ChromaEmbeddingFunction",
    "ChromaIndex",
    "Embedder",
    "HashingEmbedder",
    "Hit",
    "InMemoryIndex",
    "Namespace",
    "Scope",
    "SentenceTransformerEmbedder",
    "VectorIndex",
    "VectorMemory",
    "build_memory",
    "estimate_tokens",
    "format_memories",
    "format_memory",
    "get_embedder",
    "make_embedder",
    "require_patient_id",
    "where_filter",
]


def __getattr__(name: str) -> Any:
    """Import the chroma-backed names on first use (chromadb is slow to import)."""
    if name in {"ChromaIndex", "ChromaEmbeddingFunction"}:
        from theramind.memory import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
