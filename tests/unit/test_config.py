"""Loading settings and taxonomies: validation errors name file and field; env overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from theramind.config import default_config_dir, load_config, load_taxonomy
from theramind.errors import ConfigError


def test_default_config_loads_with_every_role() -> None:
    settings = load_config()
    assert set(settings.models) >= {"counselor", "patient", "judge"}
    assert settings.models["counselor"].backend == "llamacpp"
    taxonomy = settings.taxonomy()
    assert len(taxonomy.emotions) == 8 and len(taxonomy.strategies) == 12
    assert {s.attitude for s in taxonomy.strategies} == {"positive", "negative"}
    assert sum(s.attitude == "positive" for s in taxonomy.strategies) == 4


def test_one_env_var_points_every_role_at_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THERAMIND_BASE_URL", "http://gpu-box:8000/v1")
    monkeypatch.setenv("THERAMIND_MODEL", "Qwen/Qwen3-8B")
    monkeypatch.setenv("THERAMIND_API_KEY", "secret")
    settings = load_config()
    for role in ("counselor", "patient", "judge"):
        spec = settings.models[role]
        assert spec.backend == "openai" and spec.base_url == "http://gpu-box:8000/v1"
        assert spec.model == "Qwen/Qwen3-8B" and spec.resolved_api_key() == "secret"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


def test_unknown_field_is_named_with_its_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "models: {counselor: scripted, patient: scripted, judge: scripted}\n"
        "limits: {max_roundz: 3}\n",
    )
    with pytest.raises(ConfigError, match=r"bad\.yaml: limits\.max_roundz"):
        load_config(path, config_dir=str(default_config_dir()))


def test_bad_value_is_named(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "models: {counselor: scripted, patient: scripted, judge: scripted}\n"
        "limits: {max_rounds: -1}\n",
    )
    with pytest.raises(ConfigError, match=r"limits\.max_rounds"):
        load_config(path, config_dir=str(default_config_dir()))


def test_a_file_naming_one_role_keeps_the_defaults_for_the_others(tmp_path: Path) -> None:
    path = _write(tmp_path, "models: {counselor: scripted}\n")
    settings = load_config(path)
    assert settings.models["counselor"].backend == "scripted"
    assert settings.models["patient"].backend == settings.models["judge"].backend == "llamacpp"


def test_openai_backend_without_url_is_reported(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "models: {counselor: {backend: openai}, patient: scripted, judge: scripted}\n"
    )
    with pytest.raises(ConfigError, match=r"models\.counselor.*base_url"):
        load_config(path, config_dir=str(default_config_dir()))


def test_broken_taxonomy_is_reported(tmp_path: Path) -> None:
    src = default_config_dir() / "taxonomy"
    for name in ("emotions", "therapies", "phases"):
        (tmp_path / f"{name}.yaml").write_text((src / f"{name}.yaml").read_text())
    (tmp_path / "strategies.yaml").write_text(
        "strategies:\n"
        "  - {id: a, name: A, attitude: sideways}\n"
        "  - {id: b, name: B, attitude: negative}\n"
    )
    with pytest.raises(ConfigError, match=r"strategies\.0\.attitude"):
        load_taxonomy(tmp_path)


def test_invalid_yaml_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, "models: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
