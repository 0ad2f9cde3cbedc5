"""PsychEval import: a Chinese case becomes a Chinese profile that runs two scripted sessions."""

from __future__ import annotations

import json
from pathlib import Path

from theramind import load_config
from theramind.datasets import import_profiles
from theramind.simulation import ExperimentConfig, ExperimentRunner
from theramind.simulation.profiles import load_profiles
from theramind.simulation.records import SessionLog, TurnLog, read_jsonl

FIXTURE = Path(__file__).parent.parent / "data" / "datasets" / "psycheval_small.json"
THERAPIES = load_config().taxonomy().therapy_ids


def test_case_file_imports_in_chinese_and_names_bad_cases(tmp_path: Path) -> None:
    result = import_profiles("psycheval", FIXTURE, tmp_path, THERAPIES, seed=0)
    assert {(r.record, r.field) for r in result.rejected} == {
        ("case-zh-02", "client_info.main_problem"),
        ("case-zh-03", "client_info.static_traits.年龄"),
        ("case-zh-04", "client_info.core_beliefs"),
        ("4", "record"),
    }
    profile = load_profiles(tmp_path, THERAPIES)["psycheval-case-zh-01"]
    assert profile.language == "zh" and profile.category == "stress"
    assert (profile.pseudonym, profile.age, profile.gender) == ("小周", 26, "female")
    assert profile.concerns[0] == "我只要出一次错就会被开除"
    # One guidance per plan step, in the patient's voice and in Chinese.
    assert len(profile.guidance) == 3
    assert "了解我对工作出错的担心" in profile.guidance[0]
    assert all("她" not in g for g in profile.guidance)
    assert profile.disclosures[0].text.endswith("提醒了我")
    assert profile.source is not None and profile.source.language == "zh"
    assert "guidance" not in profile.source.defaulted
    assert "physical_health_history" in profile.source.defaulted
    report = json.loads((tmp_path / "import.json").read_text())
    assert report["imported"] == 1 and len(report["rejected"]) == 4


def test_imported_chinese_case_runs_two_scripted_sessions(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    import_profiles("psycheval", FIXTURE, profiles, THERAPIES, seed=0)
    exp = ExperimentConfig.model_validate(
        {
            "name": "psycheval-import",
            "counselors": ["theramind"],
            "patients": ["psycheval-case-zh-01"],
            "profiles_dir": str(profiles),
            "sessions": 2,
            "round_cap": 4,
            "models": {"counselor": "scripted", "patient": "scripted", "judge": "scripted"},
            "memory": {"backend": "chroma", "embedding_model": "hashing", "min_similarity": 0.1},
            "output_dir": str(tmp_path / "run"),
        }
    )
    summary = ExperimentRunner(exp).run()
    assert summary.tracks_failed == 0 and summary.sessions_run == 2
    sessions = read_jsonl(tmp_path / "run" / "sessions.jsonl", SessionLog)
    assert [s.session_no for s in sessions] == [1, 2]
    turns = read_jsonl(tmp_path / "run" / "turns.jsonl", TurnLog)
    assert turns and {t.patient_id for t in turns} == {"psycheval-case-zh-01"}
    chinese = [t for t in turns if any("\u4e00" <= ch <= "\u9fff" for ch in t.patient.text)]
    assert len(chinese) == len(turns)  # the imported patient speaks the case's language
