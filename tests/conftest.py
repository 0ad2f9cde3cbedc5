"""Shared fixtures: offline settings, a scripted counselor, an app in a temporary home."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
# Anything that falls back to the default storage home writes here, never into the user's data.
os.environ["THERAMIND_HOME"] = tempfile.mkdtemp(prefix="theramind-test-home-")

import pgcluster
from scripted import Counselor, scripted_backend
from theramind import TheraMind, load_config
from theramind.config import Settings
from theramind.llm import ScriptedBackend
from theramind.memory import HashingEmbedder, build_memory
from theramind.services import build_services


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[pgcluster.PgCluster]:
    """A PostgreSQL server on loopback for the whole run (skips where none can be had)."""
    reason = pgcluster.unavailable()
    if reason:
        pytest.skip(f"no PostgreSQL for the postgres variant: {reason}")
    cluster = pgcluster.PgCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster: pgcluster.PgCluster) -> Iterator[str]:
    """The URL of a fresh, empty database, dropped after the test."""
    url = postgres_cluster.create_database()
    yield url
    postgres_cluster.drop_database(url)


@pytest.fixture
def storage_backend(request: pytest.FixtureRequest) -> str:
    """'sqlite', or what a module parametrizes (`indirect=True`): 'sqlite' and 'postgres'."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def storage(tmp_path: Path, storage_backend: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """The `storage` settings of the test's backend, with a temporary home."""
    home = {"home": str(tmp_path / "home")}
    if storage_backend == "postgres":
        return {**home, "backend": "postgres", "url": request.getfixturevalue("postgres_url")}
    return home


@pytest.fixture
def settings(storage: dict[str, str]) -> Settings:
    """Scripted models everywhere, in-memory vector index, storage in a temporary home."""
    return load_config(
        None,
        models={"counselor": "scripted", "patient": "scripted", "judge": "scripted"},
        storage=storage,
        memory={"backend": "inmemory", "min_similarity": 0.2},
    )


AppFactory = Callable[..., TheraMind]


@pytest.fixture
def make_app(settings: Settings) -> Iterator[AppFactory]:
    """Build apps over the same home (so a 'restart' sees the same data)."""
    apps: list[TheraMind] = []

    def factory(counselor: Counselor | ScriptedBackend | None = None, **kwargs: Any) -> TheraMind:
        backend = (
            counselor if isinstance(counselor, ScriptedBackend) else scripted_backend(counselor)
        )
        memory = kwargs.pop("memory", None) or build_memory(settings, embedder=HashingEmbedder())
        services = build_services(
            kwargs.pop("settings", settings),
            backends={"counselor": backend},
            memory=memory,
            **kwargs,
        )
        app = TheraMind(services)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.close()


PROFILE = {
    "patient_id": "p1",
    "pseudonym": "Alex",
    "age": 34,
    "history": "Two episodes of low mood in his twenties.",
    "presenting_problem": "Work stress, poor sleep, feels like a failure.",
    "category": "stress",
}


@pytest.fixture
def profile() -> dict[str, Any]:
    """A patient profile."""
    return dict(PROFILE)


@pytest.fixture
def files_looked_up(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every path `Path.is_file` is asked about from now on (clear it to start counting later)."""
    looked: list[Path] = []
    real = Path.is_file

    def is_file(self: Path) -> bool:
        looked.append(self)
        return real(self)

    monkeypatch.setattr(Path, "is_file", is_file)
    return looked
