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

from scripted import Counselor, scripted_backend
from theramind import TheraMind, load_config
from theramind.config import Settings
from theramind.llm import ScriptedBackend
from theramind.memory import HashingEmbedder, build_memory
from theramind.services import build_services


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Scripted models everywhere, in-memory vector index, storage in a temporary home."""
    return load_config(
        None,
        models={"counselor": "scripted", "patient": "scripted", "judge": "scripted"},
        storage={"home": str(tmp_path / "home")},
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
