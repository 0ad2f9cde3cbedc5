"""Simulated patient profiles: the shipped set, validation errors, the counselor's view."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from theramind.config import load_config
from theramind.errors import ConfigError
from theramind.records import PatientProfile
from theramind.simulation.profiles import (
    CATEGORIES,
    STYLES,
    load_profile,
    load_profiles,
    patients_dir,
    select_profiles,
)

THERAPIES = (
    load_config(None, models={r: "scripted" for r in ("counselor", "patient", "judge")})
    .taxonomy()
    .therapy_ids
)


def _write(tmp_path: Path, **changes: object) -> Path:
    data = yaml.safe_load((patients_dir() / "anxiety-priya.yaml").read_text())
    data.update(changes)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_profiles_load_and_cover_every_category_and_style() -> None:
    profiles = load_profiles(None, THERAPIES)
    assert len(profiles) >= 20
    assert {p.category for p in profiles.values()} == set(CATEGORIES)
    assert {p.style for p in profiles.values()} == set(STYLES)
    for p in profiles.values():
        assert len(p.guidance) == 6, p.id
        assert all(len(g.split()) <= 40 for g in p.guidance), p.id
        assert 1 <= len(p.responsive_therapies) <= 2, p.id
        assert set(p.responsiveness) == set(THERAPIES), p.id
        assert 0 <= p.latent.phq9 <= 27 and 0 <= p.latent.gad7 <= 21


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"style": "angry"}, "style"),
        ({"category": "work"}, "category"),
        ({"age": 7}, "age"),
        ({"guidance": [" ".join(["word"] * 41)]}, "guidance"),
        ({"latent": {"phq9": 30, "gad7": 5}}, "latent.phq9"),
        ({"surname": "Smith"}, "surname"),
    ],
)
def test_validation_errors_name_file_and_field(
    tmp_path: Path, changes: dict[str, object], field: str
) -> None:
    path = _write(tmp_path, **changes)
    with pytest.raises(ConfigError) as err:
        load_profile(path, THERAPIES)
    assert str(path) in str(err.value)
    assert field in str(err.value)


def test_responsiveness_must_match_the_catalog_and_name_clear_responders(tmp_path: Path) -> None:
    base = yaml.safe_load((patients_dir() / "anxiety-priya.yaml").read_text())["responsiveness"]
    path = _write(tmp_path, responsiveness={**base, "hypnosis": 0.2})
    with pytest.raises(ConfigError, match=r"broken\.yaml: responsiveness: unknown therapy"):
        load_profile(path, THERAPIES)
    flat = {t: 0.4 for t in THERAPIES}
    with pytest.raises(ConfigError, match="one or two therapies"):
        load_profile(_write(tmp_path, responsiveness=flat), THERAPIES)


def test_missing_file_and_bad_yaml_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_profile(tmp_path / "nobody.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_profile(bad)


def test_intake_hides_latent_state_guidance_and_responsiveness() -> None:
    profile = load_profiles(None, THERAPIES)["love-mara"]
    intake = profile.intake()
    assert isinstance(intake, PatientProfile)
    assert set(intake.model_dump()) == {
        "patient_id",
        "pseudonym",
        "age",
        "history",
        "presenting_problem",
        "category",
        "language",
    }
    text = intake.model_dump_json().lower()
    for secret in ["phq", "gad", "responsiveness", "latent", *profile.guidance]:
        assert secret.lower() not in text
    for fact in profile.disclosures:
        assert fact.text.lower() not in text


def test_select_by_id_category_and_all() -> None:
    profiles = load_profiles(None, THERAPIES)
    chosen = select_profiles(profiles, ["youth-noah", "category:youth", "youth-noah"])
    assert chosen[0].id == "youth-noah"
    assert {p.category for p in chosen} == {"youth"}
    assert len(select_profiles(profiles, ["all"])) == len(profiles)
    with pytest.raises(ConfigError, match="no profile with id"):
        select_profiles(profiles, ["nobody"])
    with pytest.raises(ConfigError, match="unknown category"):
        select_profiles(profiles, ["category:work"])


def test_chinese_profiles_cover_every_category_and_speak_chinese() -> None:
    from theramind.llm import ModelRouter, ScriptedBackend
    from theramind.simulation.llm_patient import LLMPatient

    chinese = select_profiles(load_profiles(None, THERAPIES), ["language:zh"])
    assert len(chinese) >= 10
    assert {p.category for p in chinese} == set(CATEGORIES)
    intake = chinese[0].intake()
    assert intake.language == "zh" and "症状：" in intake.presenting_problem
    backend = ScriptedBackend(handler=lambda request: "我最近睡得不好，心里很乱。")
    settings = load_config(None, models={r: "scripted" for r in ("counselor", "patient", "judge")})
    patient = LLMPatient(ModelRouter(settings, backends={"patient": backend}))
    patient.reset(chinese[0], 1, random.Random(0))
    turn = patient.step("你好，今天想聊些什么？")
    system = backend.calls[-1].messages[0]["content"]
    assert system.startswith("你在扮演") and "用简体中文" in system
    assert turn.text == "我最近睡得不好，心里很乱。"
