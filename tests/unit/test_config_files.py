"""The one lookup of configuration files: found once when absolute, looked for again otherwise."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from theramind.config_files import config_file, default_config_dir, resolved_path
from theramind.opening import opening_phrases
from theramind.safety.resources import load_resources


def test_a_found_absolute_file_is_not_looked_for_again(
    tmp_path: Path, files_looked_up: list[Path]
) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("x: 1\n", encoding="utf-8")
    looked = files_looked_up
    looked.clear()
    assert config_file(path) == path.resolve()
    assert config_file(path) == path.resolve()
    assert looked == [path], "the second lookup is served from memory"


def test_a_missing_file_is_looked_for_each_time_and_found_once_added(tmp_path: Path) -> None:
    path = tmp_path / "later.yaml"
    assert config_file(path) is None
    path.write_text("x: 1\n", encoding="utf-8")
    assert config_file(path) == path.resolve()


def test_a_folder_is_not_a_config_file(tmp_path: Path) -> None:
    assert config_file(tmp_path) is None


def test_relative_paths_follow_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "c.yaml").write_text(f"name: {name}\n", encoding="utf-8")
    relative = Path("c.yaml")
    monkeypatch.chdir(tmp_path / "one")
    assert config_file(relative) == (tmp_path / "one" / "c.yaml").resolve()
    assert resolved_path(relative) == (tmp_path / "one" / "c.yaml").resolve()
    monkeypatch.chdir(tmp_path / "two")
    assert config_file(relative) == (tmp_path / "two" / "c.yaml").resolve()
    assert resolved_path(relative) == (tmp_path / "two" / "c.yaml").resolve()


def _config_copy(root: Path) -> None:
    shutil.copytree(default_config_dir() / "safety", root / "configs" / "safety")
    shutil.copytree(default_config_dir() / "locales" / "en", root / "configs" / "locales" / "en")


def test_a_relative_config_folder_is_read_from_the_directory_of_the_moment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative `THERAMIND_CONFIG_DIR` names another folder after a chdir; so do its files."""
    for name in ("one", "two"):
        _config_copy(tmp_path / name)
    opening = tmp_path / "two" / "configs" / "locales" / "en" / "opening.yaml"
    relative = Path("configs")
    monkeypatch.chdir(tmp_path / "one")
    first = load_resources(relative)
    first_opening = opening_phrases("en", relative)
    monkeypatch.chdir(tmp_path / "two")
    second = load_resources(relative)
    assert second is not first, "the second folder's file was read, not the first one's again"
    assert second == first  # same content: only which file was read differs
    # The same holds for opening phrases: the lookup names the second folder's file.
    assert config_file(relative / "locales" / "en" / "opening.yaml") == opening.resolve()
    assert opening_phrases("en", relative) is not first_opening


def test_config_paths_follow_the_config_dir_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from theramind.config_files import config_base
    from theramind.locales import locales_dir
    from theramind.safety.patterns import patterns_path

    given = tmp_path / "cfg"
    assert config_base(given) is given  # a path is handed back as it is
    assert config_base(str(given)) == given
    assert patterns_path("es", given) == given / "safety" / "patterns" / "es.yaml"
    assert locales_dir(str(given)) == given / "locales"
    # The cached paths must not freeze the default: THERAMIND_CONFIG_DIR moves it.
    monkeypatch.delenv("THERAMIND_CONFIG_DIR", raising=False)
    packaged = default_config_dir()
    assert patterns_path("en") == packaged / "safety" / "patterns" / "en.yaml"
    monkeypatch.setenv("THERAMIND_CONFIG_DIR", str(given))
    assert config_base(None) == given
    assert patterns_path("en") == given / "safety" / "patterns" / "en.yaml"
    assert locales_dir() == given / "locales"
