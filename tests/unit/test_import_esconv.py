"""ESConv import: valid records become validated profiles, bad ones are named and skipped."""

from __future__ import annotations

from pathlib import Path

from theramind import load_config
from theramind.datasets import import_profiles
from theramind.simulation.profiles import load_profiles

FIXTURE = Path(__file__).parent.parent / "data" / "datasets" / "esconv_small.json"


def test_esconv_fixture_imports_valid_records_and_names_bad_ones(tmp_path: Path) -> None:
    therapies = load_config().taxonomy().therapy_ids
    result = import_profiles("esconv", FIXTURE, tmp_path, therapies, seed=0)
    rejected = {(r.record, r.field) for r in result.rejected}
    assert rejected == {
        ("3", "record"),
        ("4", "survey_score.seeker.initial_emotion_intensity"),
        ("5", "dialog[0].content"),
        ("6", "situation"),
    }
    profiles = load_profiles(tmp_path, therapies)
    assert sorted(profiles) == ["esconv-0", "esconv-1", "esconv-2"]
    first = profiles["esconv-0"]
    assert first.category == "stress" and first.source is not None
    assert first.source.format == "esconv" and "latent" not in first.source.defaulted
    assert first.latent.phq9 >= 15  # initial intensity 5 of 5: a severe start
    assert "category" in (profiles["esconv-2"].source.defaulted or [])  # type: ignore[union-attr]
    assert "latent" in profiles["esconv-1"].source.defaulted  # type: ignore[union-attr]
    again = import_profiles("esconv", FIXTURE, tmp_path / "again", therapies, seed=0)
    assert [p.read_text() for p in again.written] == [p.read_text() for p in result.written]
