"""Tests for the deterministic risk screen: labelled cases, rates, config errors, latency."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from theramind.config import default_config_dir
from theramind.errors import ConfigError, InputError
from theramind.records import RISK_ORDER, RiskScreen
from theramind.safety import load_patterns, normalize_text, screen

DATA = Path(__file__).resolve().parents[1] / "data" / "risk_cases.yaml"
CASES: list[dict[str, Any]] = yaml.safe_load(DATA.read_text(encoding="utf-8"))["cases"]
RISK = [c for c in CASES if c["group"] in ("explicit", "indirect")]
BENIGN = [c for c in CASES if c["group"] in ("lookalike", "benign")]


def _detected(case: dict[str, Any], result: RiskScreen) -> bool:
    return RISK_ORDER[result.level] >= RISK_ORDER[case["level"]]


def _ids(case: dict[str, Any]) -> str:
    return f"{case['group']}:{case['text'][:40]}"


def test_case_set_has_the_required_shape() -> None:
    groups = {g: sum(c["group"] == g for c in CASES) for g in ("explicit", "indirect")}
    assert groups["explicit"] >= 35 and groups["indirect"] >= 30
    assert sum(c["group"] == "lookalike" for c in CASES) >= 40
    assert sum(c["group"] == "benign" for c in CASES) >= 15
    assert all(c["level"] in RISK_ORDER for c in CASES)
    assert all(c["level"] != "none" for c in RISK) and all(c["level"] == "none" for c in BENIGN)
    assert len({c["text"] for c in CASES}) == len(CASES), "duplicate texts"


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_screen_is_well_formed_and_must_cases_pass(case: dict[str, Any]) -> None:
    result = screen(case["text"])
    assert isinstance(result, RiskScreen)
    assert (result.level == "none") == (not result.categories)
    assert bool(result.categories) == bool(result.evidence)
    assert all(0 < len(e) <= 80 for e in result.evidence)
    if case.get("must"):
        assert _detected(case, result) if case["level"] != "none" else result.level == "none"
        if case.get("category"):
            assert case["category"] in result.categories


def test_detection_rate_on_risk_cases() -> None:
    missed = [c["text"] for c in RISK if not _detected(c, screen(c["text"]))]
    rate = 1 - len(missed) / len(RISK)
    assert rate >= 0.95, f"detection {rate:.3f}; missed: {missed}"


def test_detection_rate_per_group() -> None:
    for group in ("explicit", "indirect"):
        cases = [c for c in RISK if c["group"] == group]
        hits = sum(_detected(c, screen(c["text"])) for c in cases)
        assert hits / len(cases) >= 0.9, group


def test_false_alarm_rate_on_benign_and_lookalikes() -> None:
    alarms = [c["text"] for c in BENIGN if screen(c["text"]).level != "none"]
    rate = len(alarms) / len(BENIGN)
    assert rate <= 0.05, f"false alarms {rate:.3f}: {alarms}"


def test_category_recall_on_labelled_cases() -> None:
    labelled = [c for c in RISK if c.get("category")]
    found = sum(c["category"] in screen(c["text"]).categories for c in labelled)
    assert found / len(labelled) >= 0.9


def test_case_set_defeats_a_naive_keyword_screen() -> None:
    words = ("kill", "die", "dead", "suicid", "hurt", "cut", "pills", "end it", "hit")
    flagged = [any(w in c["text"].lower() for w in words) for c in CASES]
    risk = [f for f, c in zip(flagged, CASES, strict=True) if c in RISK]
    benign = [f for f, c in zip(flagged, CASES, strict=True) if c in BENIGN]
    assert sum(risk) / len(risk) < 0.95 or sum(benign) / len(benign) > 0.05
    assert sum(benign) / len(benign) > 0.3  # the look-alikes really do look alike


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("I'm not sure I want to live", "moderate"),
        ("I'm not suicidal and never have been", "none"),
        ("this job is killing me", "none"),
        ("I could kill for a coffee", "none"),
        ("I've been looking up how many pills it takes", "high"),
        ("I tried to kill myself last year and I still want to die", "high"),
        ("I keep thinking about killing myself and I have the rope", "high"),
        ("I want to kill him", "high"),
        ("My dad hits me", "moderate"),
        ("i dont want to be alive", "moderate"),
        ("I’m going to end it all", "high"),
    ],
)
def test_individual_levels(text: str, level: str) -> None:
    assert screen(text).level == level


def test_categories_sorted_by_severity_and_evidence_short() -> None:
    result = screen("I overdosed last year. Lately I feel hopeless and I want to die.")
    assert result.level == "high"  # past attempt with current wish to be dead
    assert result.categories == ["past_attempt", "passive_death_wish", "hopelessness"]
    assert "want to die" in result.evidence
    assert "overdosed" in result.evidence


def test_normalisation() -> None:
    assert normalize_text("I  DON’T   want\tto  live") == "i do not want to live"
    expanded = "i am tired, can not sleep, will not eat"
    assert normalize_text("im tired, cant sleep, wont eat") == expanded
    assert normalize_text("self-harm") == "self harm"
    assert screen("I DONT WANT TO BE ALIVE ANYMORE").level == "moderate"


def test_empty_and_invalid_input() -> None:
    assert screen("") == RiskScreen()
    assert screen("   \n ") == RiskScreen()
    with pytest.raises(InputError):
        screen(None)  # type: ignore[arg-type]


def _copy_config(tmp_path: Path) -> Path:
    target = tmp_path / "safety" / "patterns"
    target.mkdir(parents=True)
    shutil.copy(default_config_dir() / "safety" / "patterns" / "en.yaml", target / "en.yaml")
    return target / "en.yaml"


def test_invalid_regex_names_file_and_field(tmp_path: Path) -> None:
    path = _copy_config(tmp_path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["categories"]["self_harm"]["patterns"][1] = "(unbalanced"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_patterns("en", tmp_path)
    assert str(path.resolve()) in str(err.value)
    assert "categories.self_harm.patterns.1.regex" in str(err.value)


def test_bad_level_and_unknown_macro_are_reported(tmp_path: Path) -> None:
    path = _copy_config(tmp_path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["categories"]["abuse"]["level"] = "severe"
    data["benign"][0] = "<no_such_macro> words"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        screen("hello", config_dir=tmp_path)
    message = str(err.value)
    assert "categories.abuse.level" in message
    assert "benign.0" in message and "unknown macro <no_such_macro>" in message


def test_broken_yaml_and_missing_language(tmp_path: Path) -> None:
    path = _copy_config(tmp_path)
    path.write_text("categories: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_patterns("en", tmp_path)
    with pytest.raises(ConfigError, match="no risk patterns for language 'xx'"):
        screen("hello", languages=("xx",), config_dir=tmp_path)


def test_escalation_must_name_known_categories(tmp_path: Path) -> None:
    path = _copy_config(tmp_path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["escalations"][0]["all_of"][0] = ["no_such_category"]
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"escalations\.0\.all_of: unknown category"):
        load_patterns("en", tmp_path)


def test_patterns_are_cached() -> None:
    assert load_patterns("en") is load_patterns("en")


def test_latency_is_well_under_a_millisecond_typical() -> None:
    texts = [c["text"] for c in CASES]
    screen(texts[0], semantic=False)
    start = time.perf_counter()
    for text in texts * 3:
        screen(text, semantic=False)  # the pattern layer; the benchmark times the whole screen
    mean_ms = (time.perf_counter() - start) / (len(texts) * 3) * 1000
    assert mean_ms < 5.0  # loose for shared CI machines; the benchmark reports real figures


def test_parallel_first_use_compiles_the_patterns_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from theramind.safety import patterns as module

    shutil.copytree(default_config_dir() / "safety", tmp_path / "safety")
    compiled: list[Path] = []
    real = module.compile_patterns

    def slow_compile(spec: Any, path: Path) -> Any:
        compiled.append(path)
        time.sleep(0.05)  # widen the window in which a second thread could start its own
        return real(spec, path)

    monkeypatch.setattr(module, "compile_patterns", slow_compile)
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(load_patterns("en", tmp_path)))
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(compiled) == 1
    assert len(results) == 6 and all(r is results[0] for r in results)


def test_loaded_pattern_files_are_not_looked_up_again_each_turn(
    tmp_path: Path, files_looked_up: list[Path]
) -> None:
    from theramind.safety.patterns import has_patterns

    target = tmp_path / "configs"
    shutil.copytree(default_config_dir() / "safety", target / "safety")
    first = load_patterns("es", target)
    looked = files_looked_up
    looked.clear()
    assert load_patterns("es", target) is first
    assert has_patterns("es", target)
    assert looked == [], "a loaded language is served from memory"
    assert not has_patterns("xx", target), "a language without a file is still looked for"
    with pytest.raises(ConfigError, match="no risk patterns"):
        load_patterns("xx", target)
