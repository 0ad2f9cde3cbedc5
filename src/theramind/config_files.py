"""Where the configuration lives; reading its YAML files with errors naming file and field."""

from __future__ import annotations

import functools
import importlib.resources
import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from theramind.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML has it: the pure-Python one costs milliseconds a file, and
every experiment track reads its configs, taxonomy, profiles and locale files. Both build the
same objects for these files; only error texts differ."""


@functools.cache
def packaged_config_dir() -> Path:
    """Return the configuration files shipped inside the package (`theramind/configs`).

    Found once per process: config lookups run several times a turn.
    """
    return Path(str(importlib.resources.files("theramind") / "configs"))


def default_config_dir() -> Path:
    """Return the directory of the default configuration (`THERAMIND_CONFIG_DIR` overrides)."""
    env = os.environ.get("THERAMIND_CONFIG_DIR")
    return Path(env) if env else packaged_config_dir()


def config_base(config_dir: Path | str | None) -> Path:
    """Return `config_dir` as a path (the same object when it is one), else the default."""
    if isinstance(config_dir, Path):
        return config_dir
    return Path(config_dir) if config_dir else default_config_dir()


def default_home() -> Path:
    """Return where patient records live when nothing says otherwise.

    The platform's per-user data directory (`~/.local/share/theramind` on Linux), so the
    same patient is found whatever directory a command runs from.
    """
    import platformdirs

    return platformdirs.user_data_path("theramind")


def read_yaml(path: Path) -> Any:
    """Read a YAML file; a missing or malformed file is a `ConfigError` naming it."""
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # a safe loader
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc


_RESOLVED: dict[Path, Path] = {}
_FILES: dict[Path, Path] = {}
_REMEMBERED = 256
"""How many absolute paths each lookup below remembers (all are forgotten past that)."""


def _remember(cache: dict[Path, Path], path: Path, found: Path) -> Path:
    if path.is_absolute():  # a relative path names another file after a chdir
        if len(cache) >= _REMEMBERED:
            cache.clear()
        cache[path] = found
    return found


def resolved_path(path: Path) -> Path:
    """Resolve a path; an absolute one once per process (config lookups run several times a turn).

    A relative path is resolved each call, from the working directory of that moment.
    """
    found = _RESOLVED.get(path)
    return found if found is not None else _remember(_RESOLVED, path, path.resolve())


def config_file(path: Path) -> Path | None:
    """Return the resolved file `path` names, or None when there is no such file.

    The one lookup of configuration files (pattern, opening, resources files): a file once
    found at an absolute path is not looked for again, since every turn reads several. A
    missing file is looked for on each call, so one added later is found.
    """
    found = _FILES.get(path)
    if found is not None:
        return found
    if not path.is_file():
        return None
    return _remember(_FILES, path, path.resolve())


def format_validation_error(path: Path | str, exc: ValidationError) -> str:
    """Render a pydantic error as lines naming the file and the field."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        lines.append(f"{path}: {loc}: {err['msg']}")
    return "\n".join(lines)


def validate_file(path: Path, model: type[M], data: Any | None = None) -> M:
    """Validate a YAML file (or already-read data) against a model, naming file and field."""
    raw = read_yaml(path) if data is None else data
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc)) from exc
