"""Experiment definitions (YAML in `configs/experiments/`) and the settings each track runs on."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from theramind.config import ROLES, Settings, default_config_dir, load_config, validate_file
from theramind.errors import ConfigError
from theramind.simulation.patient import PatientSettings
from theramind.strict import Strict

CounselorKind = Literal["theramind", "theramind_no_memory", "fixed_therapy", "plain", "reference"]
RESULT_NEUTRAL = frozenset({"concurrency", "output_dir", "description"})
"""Fields that may change between a run and its resumption without changing any record."""


class CounselorSpec(Strict):
    """One counselor under test."""

    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: CounselorKind
    repeat_checks: bool = Field(
        default=True,
        description="reference only: repeat the memory, stage and attitude checks (published).",
    )


class PatientSpec(PatientSettings):
    """How the simulated patients are played."""

    kind: Literal["scripted", "llm"] = "scripted"


class ExperimentConfig(Strict):
    """An experiment: counselors × patients × seeds, each treated for a number of sessions."""

    name: str = Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    config: str | None = Field(
        default=None, description="Framework config (default: the bundled default.yaml)."
    )
    counselors: list[CounselorSpec] = Field(min_length=1)
    patients: list[str] = Field(
        default_factory=lambda: ["all"], description="Profile ids, 'category:NAME' or 'all'."
    )
    profiles_dir: str | None = None
    sessions: int = Field(default=6, ge=1, le=12)
    round_cap: int = Field(default=8, ge=1, le=30)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    models: dict[str, str | dict[str, Any]] = Field(
        default_factory=dict, description="Per role: a preset name or a model mapping."
    )
    patient: PatientSpec = Field(default_factory=PatientSpec)
    concurrency: int = Field(default=4, ge=1, le=256)
    output_dir: str = "runs/{name}"
    memory: dict[str, Any] = Field(default_factory=dict)
    storage: dict[str, Any] = Field(default_factory=dict)
    limits: dict[str, Any] = Field(default_factory=dict)

    @field_validator("counselors", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [{"name": v, "kind": v} if isinstance(v, str) else v for v in value]

    @field_validator("models")
    @classmethod
    def _roles(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(ROLES))
        if unknown:
            raise ValueError(f"unknown roles {unknown}; roles are {list(ROLES)}")
        return value

    @model_validator(mode="after")
    def _unique(self) -> ExperimentConfig:
        names = [c.name for c in self.counselors]
        if len(names) != len(set(names)):
            raise ValueError("counselors: names must be unique")
        if len(self.seeds) != len(set(self.seeds)):
            raise ValueError("seeds: must be unique")
        return self

    @property
    def run_dir(self) -> Path:
        """The output directory, with `{name}` filled in."""
        return Path(self.output_dir.format(name=self.name))

    def base_config(self) -> Path:
        """Return the framework config file this experiment builds on."""
        return Path(self.config) if self.config else default_config_dir() / "default.yaml"

    def snapshot(self) -> dict[str, Any]:
        """Return the fields that determine the records (what a resumed run must match)."""
        return self.model_dump(mode="json", exclude=set(RESULT_NEUTRAL))

    def fingerprint(self) -> str:
        """Return a short hash of `snapshot()`."""
        text = json.dumps(self.snapshot(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_experiment(path: Path | str, **overrides: Any) -> ExperimentConfig:
    """Load an experiment YAML; relative `config` and `profiles_dir` resolve against its folder.

    Raises:
        ConfigError: missing file, bad YAML, or a field that fails validation (named).
    """
    path = Path(path)
    exp = validate_file(path, ExperimentConfig)
    base = path.resolve().parent
    updates: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    for key in ("config", "profiles_dir"):
        value = getattr(exp, key)
        if value and not Path(value).is_absolute():
            updates[key] = str((base / value).resolve())
    if updates:
        try:
            exp = ExperimentConfig.model_validate({**exp.model_dump(), **updates})
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    return exp


@functools.lru_cache(maxsize=8)
def _base_settings(path: str) -> Settings:
    return load_config(path)


def track_settings(exp: ExperimentConfig, home: Path | None) -> Settings:
    """Return the settings of one track: the experiment's models and limits, its own home.

    A role the experiment names in `models:` keeps that model even when THERAMIND_BASE_URL or
    THERAMIND_MODEL is set: the experiment file is the more specific choice.
    """
    base = _base_settings(str(exp.base_config()))
    models: dict[str, Any] = {r: s.model_dump() for r, s in base.models.items()}
    models.update(exp.models)
    memory = {**base.memory.model_dump(), **exp.memory, "path": None, "host": None}
    storage = {**base.storage.model_dump(), **exp.storage}
    if home is not None:
        storage["home"] = str(home)
    limits = {**base.limits.model_dump(), **exp.limits, "max_rounds": exp.round_cap}
    return load_config(
        exp.base_config(),
        keep_models=tuple(exp.models),
        models=models,
        memory=memory,
        storage=storage,
        limits=limits,
    )


def with_home(settings: Settings, home: Path) -> Settings:
    """Return a copy of settings whose storage (and embedded memory) live under `home`."""
    storage = settings.storage.model_copy(update={"home": str(home)})
    return settings.model_copy(update={"storage": storage})


def public_settings(settings: Settings) -> dict[str, Any]:
    """Dump settings for a run's snapshot, without secrets or the per-track home."""
    data = settings.model_dump(mode="json")
    for spec in data.get("models", {}).values():
        spec.pop("api_key", None)
    data.get("storage", {}).pop("home", None)
    return data
