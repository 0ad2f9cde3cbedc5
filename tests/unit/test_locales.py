"""Language is a setting: templates per language from YAML, detection, fallback, word limits."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from conftest import AppFactory
from scripted import Counselor
from theramind import load_config
from theramind.agents.responder import limit_words
from theramind.config import Settings, default_config_dir
from theramind.language_id import detect_language
from theramind.llm import ScriptedBackend
from theramind.locales import available_languages, load_prompts, slots_of
from theramind.text import word_units


def _config_copy(tmp_path: Path, settings: Settings) -> Settings:
    base = tmp_path / "configs"
    shutil.copytree(default_config_dir(), base)
    return load_config(
        base / "default.yaml",
        config_dir=str(base),  # the copy, never the packaged configs, takes the new folder
        models={"counselor": "scripted", "patient": "scripted", "judge": "scripted"},
        storage={"home": settings.storage.home},
        memory={"backend": "inmemory", "min_similarity": 0.2},
    )


def test_chinese_templates_cover_every_english_text_with_the_same_slots() -> None:
    english, chinese = load_prompts("en"), load_prompts("zh")
    assert chinese.language == "zh" and not chinese.fallback
    assert chinese.missing == ()
    for key, text in english.texts.items():
        assert slots_of(chinese.text(key)) <= slots_of(text), key
    assert {"en", "zh"} <= set(available_languages())
    # Written in Chinese, not left in English.
    for key in (
        "diagnostician.perceive_system",
        "responder.respond_system",
        "strategist.plan_system",
    ):
        assert sum("\u4e00" <= ch <= "\u9fff" for ch in chinese.text(key)) > 60, key


def test_a_third_language_is_a_folder_of_yaml(
    tmp_path: Path, settings: Settings, make_app: AppFactory, profile: dict
) -> None:
    custom = _config_copy(tmp_path, settings)
    folder = custom.config_dir_path / "locales" / "eo"
    assert folder.is_relative_to(tmp_path)
    folder.mkdir()
    english = yaml.safe_load((folder.parent / "en" / "prompts.yaml").read_text("utf-8"))
    system = english["responder"]["respond_system"].replace(
        "You are a warm, skilled counselor", "Vi estas varma, lerta konsilisto"
    )
    own = {
        "labels": {"patient": "Kliento", "counselor": "Konsilisto"},
        "responder": {"respond_system": system},
    }
    (folder / "prompts.yaml").write_text(yaml.safe_dump(own, allow_unicode=True), "utf-8")
    backend = ScriptedBackend(handler=Counselor())
    app = make_app(backend, settings=custom)
    session = app.start_session("p1", profile={**profile, "language": "eo"})
    record = session.respond("Mi estas laca.").record
    session.respond("Ankoraŭ laca.")
    reply_call = backend.calls[-1]
    assert reply_call.messages[0]["content"].startswith("Vi estas varma, lerta konsilisto")
    perceive = next(c for c in backend.calls if c.schema_name == "Perception")
    assert "(start of session)" in perceive.messages[-1]["content"]  # English fills the gap
    assert "Kliento: Mi estas laca." in backend.calls[-3].messages[-1]["content"]
    assert record.language == "eo" and not any(f.startswith("language:") for f in record.fallbacks)


def test_a_language_without_templates_falls_back_to_english_and_says_so(
    make_app: AppFactory, profile: dict
) -> None:
    backend = ScriptedBackend(handler=Counselor())
    app = make_app(backend)
    session = app.start_session("p1", profile={**profile, "language": "fr"})
    record = session.respond("Je suis fatigué.").record
    assert record.language == "en"
    assert "language:fr->en" in record.fallbacks
    assert backend.calls[-1].messages[0]["content"].startswith("You are a warm")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("我最近睡不好，工作压力很大。", "zh"),
        ("I have not been sleeping and work is too much.", "en"),
        ("No puedo dormir y tengo mucho trabajo, estoy muy cansada.", "es"),
        ("Aku tidak bisa tidur dan kerjaan banyak banget.", "id"),
        ("最近、仕事のストレスで眠れません。", "ja"),
        ("ok", None),
        ("12345 !!", None),
    ],
)
def test_the_detector_tells_scripts_and_common_words_apart(text: str, language: str | None) -> None:
    assert detect_language(text) == language


def test_the_language_is_detected_from_the_intake_and_stored(
    make_app: AppFactory, profile: dict
) -> None:
    app = make_app()
    chinese = {**profile, "presenting_problem": "工作压力大，睡眠很差，觉得自己很失败。"}
    session = app.start_session("p1", profile=chinese)
    assert session.plan.language == "zh" and session.plan.language_source == "intake"
    assert app.patient("p1").language == "zh"
    assert session.respond("最近还是睡不好。").record.language == "zh"


def test_without_intake_text_the_first_message_decides_and_is_stored(
    make_app: AppFactory,
) -> None:
    backend = ScriptedBackend(handler=Counselor())
    app = make_app(backend)
    session = app.start_session("p2", profile={"patient_id": "p2", "pseudonym": "小林"})
    assert session.plan.language_source == "default"
    first = session.respond("我最近心情很低落，晚上总是睡不着。").record
    assert first.language == "zh"
    assert app.patient("p2").language == "zh"
    assert "咨询师" in backend.calls[-1].messages[0]["content"]
    second = session.respond("Sorry, I mean it is hard to sleep.").record
    assert second.language == "zh"  # settled on the first message, not re-guessed each turn
    session.end()
    assert app.start_session("p2").plan.language == "zh"


def test_chinese_replies_are_counted_and_cut_by_characters() -> None:
    text = "我听到你这周过得很辛苦。" * 20
    assert word_units("我很好") == 1.5
    cut = limit_words(text, 30)
    assert len(cut) <= 60 and cut.endswith("。")
    assert limit_words("你好，谢谢你来。", 60) == "你好，谢谢你来。"
    assert word_units(limit_words("Hello there, " * 40, 10)) <= 10


def test_a_group_of_texts_is_what_its_keys_hold_and_a_caller_cannot_change_it() -> None:
    from theramind.locales import PromptSet

    prompts = PromptSet("en", "en", {"labels.a": "A", "labels.b": "B", "labelsx.c": "C", "x": "X"})
    first = prompts.group("labels")
    assert first == {"a": "A", "b": "B"}
    first["a"] = "changed"
    assert prompts.group("labels") == {"a": "A", "b": "B"}
    assert prompts.group("missing") == {}
