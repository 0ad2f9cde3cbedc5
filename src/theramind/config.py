"""Settings: pydantic models loaded from YAML, with environment overrides.

The storage and memory settings live in `theramind.config_storage`, the taxonomy in
`theramind.taxonomy` and the file helpers in `theramind.config_files`; their names are
importable from here as well.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from theramind.config_files import (
    default_config_dir,
    default_home,
    format_validation_error,
    packaged_config_dir,
    read_yaml,
    validate_file,
)
from theramind.config_storage import MemorySettings, StorageSettings
from theramind.errors import ConfigError
from theramind.strict import Strict
from theramind.taxonomy import (
    EmotionDef,
    PhaseDef,
    StrategyDef,
    Taxonomy,
    TherapyDef,
    load_taxonomy,
)

__all__ = [
    "ROLES",
    "BackendName",
    "EmotionDef",
    "LimitSettings",
    "MemorySettings",
    "ModelSpec",
    "PhaseDef",
    "SafetySettings",
    "Settings",
    "StorageSettings",
    "StrategyDef",
    "StructuredMode",
    "Taxonomy",
    "TherapyDef",
    "default_config_dir",
    "default_home",
    "format_validation_error",
    "load_config",
    "load_taxonomy",
    "packaged_config_dir",
    "validate_file",
]

ROLES: tuple[str, ...] = ("counselor", "patient", "judge")
BackendName = Literal["llamacpp", "openai", "vllm", "scripted", "langchain"]
StructuredMode = Literal["json_schema", "json_object", "grammar", "prompt"]


class ModelSpec(Strict):
    """Which model serves a role, and how to talk to it."""

    backend: BackendName
    model: str = ""
    base_url: str | list[str] | None = Field(
        default=None,
        description="The server's OpenAI-compatible base URL, or a list of replicas: each call "
        "goes to the least-loaded one, and one that fails rests `endpoint_retry_s` seconds.",
    )
    endpoint_retry_s: float = Field(
        default=30.0, gt=0, le=3600, description="How long a failing endpoint stays out."
    )
    api_key: str | None = None
    api_key_env: str | None = None
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(default=256, ge=1, le=32768)
    timeout_s: float = Field(default=60.0, gt=0)
    retries: int = Field(default=3, ge=0, le=10)
    backoff_s: float = Field(default=0.5, ge=0)
    structured_output: StructuredMode | None = None
    max_tokens_field: Literal["max_completion_tokens", "max_tokens"] = "max_completion_tokens"
    extra_body: dict[str, Any] = Field(default_factory=dict)
    # llama.cpp
    model_path: str | None = None
    model_package: str | None = None
    model_file: str | None = None
    n_ctx: int = Field(default=4096, ge=256)
    n_threads: int | None = None
    seed: int | None = None
    # vLLM in-process
    engine_args: dict[str, Any] = Field(default_factory=dict)

    @field_validator("base_url")
    @classmethod
    def _check_urls(cls, value: str | list[str] | None) -> str | list[str] | None:
        urls = [value] if isinstance(value, str) else value
        if urls is None:
            return value
        if not urls:
            raise ValueError("base_url is an empty list: name at least one server")
        seen: set[str] = set()
        for url in urls:
            clean = url.strip().rstrip("/")
            if not clean.startswith(("http://", "https://")) or len(clean) < 10:
                raise ValueError(
                    f"base_url {url!r} is not an http(s) URL (e.g. http://gpu-1:8000/v1)"
                )
            if clean in seen:
                raise ValueError(f"base_url names {clean} twice")
            seen.add(clean)
        return value

    @property
    def base_urls(self) -> list[str]:
        """Every endpoint of the role, in the configured order (none for local backends)."""
        if self.base_url is None:
            return []
        urls = [self.base_url] if isinstance(self.base_url, str) else self.base_url
        return [u.strip().rstrip("/") for u in urls]

    @model_validator(mode="after")
    def _check_backend_fields(self) -> ModelSpec:
        if self.backend == "openai" and not self.base_url:
            raise ValueError("backend 'openai' needs base_url (or set THERAMIND_BASE_URL)")
        if self.backend != "openai" and isinstance(self.base_url, list):
            raise ValueError(
                f"a list of base_url servers needs backend 'openai', not {self.backend!r}"
            )
        if self.backend == "llamacpp" and not (self.model_path or self.model_package):
            raise ValueError("backend 'llamacpp' needs model_path or model_package")
        return self

    def resolved_api_key(self) -> str | None:
        """Return the API key, reading `api_key_env` when set."""
        if self.api_key_env:
            return os.environ.get(self.api_key_env) or self.api_key
        return self.api_key


class LimitSettings(Strict):
    """Bounds on input, session length, reply length and repair attempts."""

    max_message_chars: int = Field(default=4000, ge=1)
    max_rounds: int = Field(default=8, ge=1)
    min_rounds: int = Field(
        default=3,
        ge=1,
        description="Rounds before a wish to end seen only by the model (no explicit closing "
        "words) may close the session.",
    )
    reply_max_words: int = Field(default=60, ge=10)
    structured_retries: int = Field(default=2, ge=0, le=5)
    recent_turns_in_prompt: int = Field(default=3, ge=0, le=20)
    formulation_tokens: int = Field(
        default=120,
        ge=20,
        description="Budget of the formulation block in each turn's perception prompt.",
    )
    max_fallback_rate: float = Field(
        default=0.10,
        ge=0.0,
        le=1.0,
        description="A simulated run whose share of fallen-back model calls (per counselor "
        "and role) passes this is marked invalid.",
    )


class SafetySettings(Strict):
    """Crisis protocol settings."""

    locale: str = "intl"
    languages: list[str] = Field(default_factory=lambda: ["en", "zh", "es", "id"])
    """Risk pattern files run on every message, whatever language the patient writes in."""
    semantic: bool = True
    """Whether the risk screen runs its semantic layer (sentence embeddings) too."""


@functools.lru_cache(maxsize=64)
def _as_path(value: str) -> Path:
    """`Path(value)`, once per string: settings hand out their config directory every turn."""
    return Path(value)


class Settings(Strict):
    """Everything the framework needs, loaded from one YAML file."""

    models: dict[str, ModelSpec]
    memory: MemorySettings = Field(default_factory=MemorySettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)
    config_dir: str = Field(default_factory=lambda: str(default_config_dir()))

    @model_validator(mode="after")
    def _check_roles(self) -> Settings:
        missing = [r for r in ROLES if r not in self.models]
        if missing:
            raise ValueError(f"models: roles without a model: {', '.join(missing)}")
        return self

    @property
    def home(self) -> Path:
        """The storage home directory (created on demand by the stores)."""
        if not self.storage.home:
            return default_home()
        return Path(os.path.expanduser(self.storage.home))

    @property
    def config_dir_path(self) -> Path:
        """The directory holding this config's taxonomy, presets and safety files."""
        return _as_path(self.config_dir)

    @property
    def memory_path(self) -> Path:
        """The embedded chroma directory."""
        return (
            Path(os.path.expanduser(self.memory.path)) if self.memory.path else self.home / "chroma"
        )

    def taxonomy(self) -> Taxonomy:
        """Load the taxonomy from this config's directory."""
        return load_taxonomy(Path(self.config_dir) / "taxonomy")


def _merge(base: Any, update: Any) -> Any:
    """Merge `update` onto `base`: mappings key by key, anything else replaced."""
    if isinstance(base, dict) and isinstance(update, dict):
        merged = dict(base)
        for key, value in update.items():
            merged[key] = _merge(base.get(key), value) if key in base else value
        return merged
    return update


def _preset_dirs(config_dir: Path, user_dir: Path | None) -> list[Path]:
    dirs = [user_dir / "models"] if user_dir is not None else []
    return [*dirs, config_dir / "models"]


def _read_preset(name: str, dirs: list[Path], where: str) -> dict[str, Any]:
    for directory in dirs:
        path = directory / f"{name}.yaml"
        if path.is_file():
            data = read_yaml(path)
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: expected a mapping")
            return data
    available = sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.yaml")})
    raise ConfigError(
        f"{where}: unknown preset {name!r}; available: {', '.join(available) or '(none)'}"
    )


def _resolve_model(
    dirs: list[Path], role: str, value: Any, base: dict[str, Any] | None, where: str
) -> dict[str, Any]:
    """Resolve one role's model from its setting.

    The setting is a preset name, a mapping with a preset or a backend (which
    replaces the default), or a partial mapping (merged onto the default for that role).
    """
    if isinstance(value, str):
        value = {"preset": value}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: models.{role}: expected a preset name or a mapping")
    value = dict(value)
    preset = value.pop("preset", None)
    if preset is not None:
        return {**_read_preset(str(preset), dirs, f"{where}: models.{role}"), **value}
    if "backend" in value or base is None:
        return value
    return {**base, **value}


def _env_overrides(models: dict[str, dict[str, Any]], keep: Collection[str] = ()) -> None:
    base_url = os.environ.get("THERAMIND_BASE_URL")
    model = os.environ.get("THERAMIND_MODEL")
    api_key = os.environ.get("THERAMIND_API_KEY")
    for role in ROLES:
        if role in keep:
            continue
        spec = models.setdefault(role, {})
        role_url = os.environ.get(f"THERAMIND_{role.upper()}_BASE_URL") or base_url
        role_model = os.environ.get(f"THERAMIND_{role.upper()}_MODEL") or model
        if role_url:
            keep = {
                k: v
                for k, v in spec.items()
                if k in {"temperature", "max_tokens", "timeout_s", "retries", "backoff_s"}
            }
            spec.clear()
            urls = [u.strip() for u in role_url.split(",") if u.strip()]
            spec.update(keep, backend="openai", base_url=urls[0] if len(urls) == 1 else urls)
        if role_model:
            spec["model"] = role_model
        if api_key and spec.get("backend") == "openai":
            spec["api_key"] = api_key


def _load_mapping(path: Path) -> dict[str, Any]:
    raw = read_yaml(path)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return raw


def _resolve_models(
    layers: list[tuple[str, Any, Path | None]], config_dir: Path
) -> dict[str, dict[str, Any]]:
    """Resolve each layer's `models` onto the one below (defaults, file, overrides)."""
    models: dict[str, dict[str, Any]] = {}
    for where, models_raw, user_dir in layers:
        if models_raw is None:
            continue
        if not isinstance(models_raw, dict):
            raise ConfigError(f"{where}: models: expected a mapping of role to model")
        dirs = _preset_dirs(config_dir, user_dir)
        for role, value in models_raw.items():
            models[role] = _resolve_model(dirs, role, value, models.get(role), where)
    return models


def load_config(
    path: str | Path | None = None, *, keep_models: Collection[str] = (), **overrides: Any
) -> Settings:
    """Load settings: the packaged defaults, a user file merged onto them, then overrides.

    A user file holds only what it changes (`memory: {top_k: 8}` is a whole config).
    Mappings merge key by key; a role's model given as a preset name, or as a mapping with a
    `preset` or `backend`, replaces that role's default, while a mapping without either (say
    `{temperature: 0.2}`) merges onto it. Presets are looked up in a `models/` folder beside
    the user file first, then in `config_dir` (the packaged configs unless the file sets
    `config_dir`, relative to the file). A relative `storage.home` in a file is relative to
    that file.

    Environment: `THERAMIND_BASE_URL` and `THERAMIND_MODEL` point every role at one
    OpenAI-compatible server (per role: `THERAMIND_COUNSELOR_BASE_URL`, ...);
    `THERAMIND_API_KEY` sets its key; `THERAMIND_HOME` sets the storage home unless a file or
    an override names one (default: the platform data directory, see `default_home`).
    Keyword overrides (used by tests and the CLI) merge onto everything, like a file would;
    `keep_models` names roles whose model was chosen explicitly (an experiment's `models:`),
    which the environment does not override.
    """
    defaults_path = default_config_dir() / "default.yaml"
    cfg_path = Path(path) if path else defaults_path
    defaults = _load_mapping(defaults_path)
    user = _load_mapping(cfg_path) if path else {}
    user_dir = cfg_path.resolve().parent if path else None
    config_dir = Path(overrides.get("config_dir") or user.get("config_dir") or default_config_dir())
    if not config_dir.is_absolute():
        config_dir = ((user_dir or Path.cwd()) / config_dir).resolve()
    models = _resolve_models(
        [
            (str(defaults_path), defaults.get("models"), None),
            (str(cfg_path), user.get("models"), user_dir),
            ("overrides", overrides.get("models"), None),
        ],
        config_dir,
    )
    _env_overrides(models, keep_models)
    raw = _merge(_merge(defaults, {k: v for k, v in user.items() if k != "models"}), overrides)
    raw["models"] = models
    raw["config_dir"] = str(config_dir)
    storage = raw.get("storage")
    storage = dict(storage) if isinstance(storage, dict) else {}
    user_storage = user.get("storage")
    user_home = user_storage.get("home") if isinstance(user_storage, dict) else None
    override_home = (overrides.get("storage") or {}).get("home")
    if override_home:
        storage["home"] = str(override_home)
    elif user_home and user_dir is not None:
        home = Path(os.path.expanduser(str(user_home)))
        storage["home"] = str(home if home.is_absolute() else user_dir / home)
    elif os.environ.get("THERAMIND_HOME"):
        storage["home"] = os.environ["THERAMIND_HOME"]
    raw["storage"] = storage
    settings = validate_file(cfg_path, Settings, raw)
    settings.taxonomy()  # fail early on a broken taxonomy
    return settings
