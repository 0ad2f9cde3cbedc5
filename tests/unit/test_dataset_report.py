"""Report import: the patient role extracts profiles; a failing extraction is marked, not fatal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from theramind import load_config
from theramind.datasets import import_profiles
from theramind.llm import Request, ScriptedBackend
from theramind.simulation.profiles import load_profiles

FIXTURE = Path(__file__).parent.parent / "data" / "datasets" / "reports_small.json"
SETTINGS = load_config(None, models={"patient": "scripted"})
THERAPIES = SETTINGS.taxonomy().therapy_ids


def extractor(request: Request) -> Any:
    """Extracts the English report; answers the Chinese one with output no schema accepts."""
    if request.schema_name != "ExtractedCase":
        return None
    text = request.messages[-1]["content"]
    if "student" not in text:
        return "I cannot read this report."
    return {
        "age": 20,
        "gender": "female",
        "category": "anxiety",
        "style": "verbose",
        "current_problems": "Rechecks every exam answer until time runs out.",
        "symptoms": ["checking", "poor sleep before tests"],
        "concerns": ["If I make one mistake I have failed."],
        "guidance": ["I'll explain the checking.", "I want to try checking only once."],
    }


def test_reports_extract_through_the_patient_role_with_marked_fallbacks(tmp_path: Path) -> None:
    backend = ScriptedBackend(handler=extractor)
    result = import_profiles(
        "report", FIXTURE, tmp_path, THERAPIES, settings=SETTINGS, backends={"patient": backend}
    )
    assert {(r.record, r.field) for r in result.rejected} == {
        ("r3", "case_brief"),
        ("r4", "case_brief"),
        ("4", "record"),
    }
    profiles = load_profiles(tmp_path, THERAPIES)
    good = profiles["report-r1"]
    assert (good.age, good.category, good.style) == (20, "anxiety", "verbose")
    assert good.guidance[1] == "I want to try checking only once."
    assert good.source is not None and "extracted by the patient role" in good.source.notes
    assert "category" not in good.source.defaulted and "pseudonym" in good.source.defaulted
    # The Chinese report's extraction failed: built by rule, in Chinese, every field marked.
    marked = profiles["report-r2"]
    assert marked.language == "zh" and marked.category == "family"
    assert marked.current_problems.startswith("来访者和母亲")
    assert marked.source is not None and "extraction failed" in marked.source.notes
    assert {"concerns", "guidance", "symptoms", "category"} <= set(marked.source.defaulted)
    assert all(c.role == "patient" for c in backend.calls)


def test_cli_report_with_the_scripted_preset_marks_every_extraction(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from theramind.cli import app

    args = ["profiles", "import", str(FIXTURE), "-f", "report", "-o", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--model", "scripted"])
    assert result.exit_code == 0, result.output
    assert "Imported 2 profiles, rejected 3 records" in result.output
    assert sorted(load_profiles(tmp_path, THERAPIES)) == ["report-r1", "report-r2"]
