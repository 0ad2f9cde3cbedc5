"""CCD (cognitive conceptualization) and generic JSONL/CSV imports with a field mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from theramind import load_config
from theramind.cli import app
from theramind.datasets import import_profiles
from theramind.errors import InputError
from theramind.simulation.profiles import load_profiles

DATA = Path(__file__).parent.parent / "data" / "datasets"
THERAPIES = load_config().taxonomy().therapy_ids
MAP = {"id": "case", "age": "age_years", "current_problems": "problem", "symptoms": "feelings"}


def test_ccd_case_model_becomes_a_patient_who_reaches_beliefs_with_trust(tmp_path: Path) -> None:
    result = import_profiles("ccd", DATA / "ccd_small.json", tmp_path, THERAPIES)
    assert {(r.record, r.field) for r in result.rejected} == {
        ("ccd-b", "situation"),
        ("ccd-c", "emotions"),
    }
    profile = load_profiles(tmp_path, THERAPIES)["ccd-ccd-a"]
    assert profile.category == "stress" and profile.style == "reserved"
    assert profile.concerns[0] == "I will freeze and everyone will laugh at me."
    assert "feeling anxious" in profile.symptoms and "skipped lunch" in profile.symptoms
    assert len(profile.guidance) == 4 and "incompetent" in profile.guidance[3]
    assert [d.text for d in profile.disclosures] == ["I am incompetent", "I am a failure"]
    assert all(d.session >= 2 and d.trust > 0.5 for d in profile.disclosures)
    assert profile.source is not None and "style" not in profile.source.defaulted


def test_csv_with_a_mapping_names_bad_rows_by_field_and_column(tmp_path: Path) -> None:
    result = import_profiles(
        "csv",
        DATA / "tabular_small.csv",
        tmp_path,
        THERAPIES,
        mapping={**MAP, "concerns": "worries", "category": "group"},
    )
    assert {(r.record, r.field) for r in result.rejected} == {
        ("row-4", "age (from age_years)"),
        ("row-5", "problem"),
        ("row-6", "category (from group)"),
    }
    profiles = load_profiles(tmp_path, THERAPIES)
    first = profiles["import-p1"]
    assert first.age == 34 and first.symptoms == ["insomnia", "irritability"]
    assert first.concerns == ["I keep listening for rain", "what if it happens again"]
    second = profiles["import-p2"]
    assert second.source is not None and "age" in second.source.defaulted
    assert "concerns" in second.source.defaulted and second.category == "social"


def test_jsonl_reads_nested_keys_and_unknown_mapping_fields_are_refused(tmp_path: Path) -> None:
    source = tmp_path / "cases.jsonl"
    rows = [
        {"case": {"id": "j1", "text": "Panics on the underground."}, "phq9": 6, "gad7": 17},
        "a bare string",
    ]
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    mapping = {"id": "case.id", "current_problems": "case.text"}
    result = import_profiles("jsonl", source, tmp_path / "out", THERAPIES, mapping=mapping)
    assert [r.record for r in result.rejected] == ["line-2", "line-3"]
    profile = load_profiles(tmp_path / "out", THERAPIES)["import-j1"]
    assert (profile.latent.phq9, profile.latent.gad7) == (6, 17)
    with pytest.raises(InputError, match="unknown profile fields"):
        import_profiles("jsonl", source, tmp_path / "x", THERAPIES, mapping={"problem": "a"})
    with pytest.raises(InputError, match="applies to"):
        import_profiles("ccd", source, tmp_path / "x", THERAPIES, mapping={"id": "a"})


def test_cli_map_option(tmp_path: Path) -> None:
    args = ["profiles", "import", str(DATA / "tabular_small.csv"), "-f", "csv"]
    maps = [x for k, v in MAP.items() for x in ("--map", f"{k}={v}")]
    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path), *maps])
    assert result.exit_code == 0, result.output
    assert "Imported 3 profiles, rejected 2 records" in result.output
    bad = CliRunner().invoke(app, [*args, "-o", str(tmp_path), "--map", "problem"])
    assert bad.exit_code == 1 and "FIELD=COLUMN" in bad.output
