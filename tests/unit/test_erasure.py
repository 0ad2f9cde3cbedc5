"""After `delete_patient`, no file under the home holds a byte of the patient's words or id."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripted import Counselor
from theramind import TheraMind, load_config
from theramind.config import Settings
from theramind.llm import ScriptedBackend
from theramind.memory import HashingEmbedder, build_memory
from theramind.services import build_services

SECRET = "violet harbour lantern"
GONE = "erase-me-4417"
KEPT = "stays-2093"


@pytest.fixture
def chroma_settings(tmp_path: Path) -> Settings:
    """Scripted models, the real embedded chroma store, storage in a temporary home."""
    return load_config(
        None,
        models={"counselor": "scripted", "patient": "scripted", "judge": "scripted"},
        storage={"home": str(tmp_path / "home")},
        memory={"backend": "chroma", "min_similarity": 0.0},
    )


def _app(settings: Settings) -> TheraMind:
    services = build_services(
        settings,
        backends={"counselor": ScriptedBackend(handler=Counselor())},
        memory=build_memory(settings, embedder=HashingEmbedder()),
    )
    return TheraMind(services)


def _mentions(home: Path, needle: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for path in sorted(home.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            count = data.count(needle.encode()) + data.count(needle.encode("utf-16-le"))
            if count:
                found[str(path.relative_to(home))] = count
    return found


def _two_sessions(app: TheraMind, pid: str, words: str) -> None:
    profile = {"patient_id": pid, "pseudonym": "Robin", "presenting_problem": f"{words} at night"}
    for no in (1, 2):
        session = app.start_session(pid, profile=profile if no == 1 else None)
        for i in range(3):
            session.respond(f"I dream of the {words}, part {no}.{i}")
        session.end()
    app.start_session(pid).respond(f"The {words} again, left open")


def test_delete_patient_leaves_nothing_readable(chroma_settings: Settings) -> None:
    home = chroma_settings.home
    app = _app(chroma_settings)
    _two_sessions(app, GONE, SECRET)
    _two_sessions(app, KEPT, "copper kettle")
    assert _mentions(home, SECRET) and _mentions(home, GONE)  # the check can see them
    index_dirs = {p.name for p in (home / "chroma").iterdir() if p.is_dir()}
    assert len(index_dirs) == 2  # one vector index per patient
    app.delete_patient(GONE)
    assert _mentions(home, SECRET) == {}
    assert _mentions(home, GONE) == {}
    assert len([p for p in (home / "chroma").iterdir() if p.is_dir()]) == 1
    # The other patient is untouched: records, open session and memories.
    kept = app.start_session(KEPT)
    assert kept.resumed and kept.turns
    assert app.services.memory is not None
    recalled = app.services.memory.recall(KEPT, "copper kettle dream", current_session=3)
    assert recalled and all(m.patient_id == KEPT for m in recalled)
    kept.release()
    app.close()
    assert _mentions(home, SECRET) == {} and _mentions(home, GONE) == {}
    again = _app(chroma_settings)  # and the store opens cleanly after the rewrite
    try:
        assert again.services.store.patients() == [KEPT]
        assert again.start_session(KEPT).turns
    finally:
        again.close()
