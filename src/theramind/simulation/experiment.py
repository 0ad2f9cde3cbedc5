"""Experiment definitions (YAML in `configs/experiments/`) and the settings each track runs on."""

from __future__ import annotations

import functools
import hashlib
import json
import random
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from theramind.config import ROLES, Settings, default_config_dir, load_config, validate_file
from theramind.errors import ConfigError
from theramind.simulation.patient import PatientSettings
from theramind.simulation.profiles import SimProfile, select_profiles
from theramind.storage_db import redact_url
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


class PatientSample(Strict):
    """A cohort drawn from a profile directory: which profiles, and a seeded sample of them.

    `dir` is the same setting as the experiment's `profiles_dir` (it is moved there on load,
    relative to the experiment file); `select` uses the selectors of a plain `patients` list.
    """

    dir: str | None = Field(default=None, description="Profile directory, e.g. an import's out.")
    select: list[str] = Field(
        default_factory=lambda: ["all"], min_length=1, description="Selectors before sampling."
    )
    sample: int | None = Field(
        default=None, ge=1, description="Draw this many of the selected profiles (all if unset)."
    )
    seed: int = Field(default=0, description="Seed of the draw: the same seed, the same cohort.")


class ExperimentConfig(Strict):
    """An experiment: counselors × patients × seeds, each treated for a number of sessions."""

    name: str = Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    config: str | None = Field(
        default=None, description="Framework config (default: the bundled default.yaml)."
    )
    counselors: list[CounselorSpec] = Field(min_length=1)
    patients: list[str] | PatientSample = Field(
        default_factory=lambda: ["all"],
        description="Profile ids, 'category:NAME' or 'all'; or {dir, select, sample, seed}.",
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

    @model_validator(mode="before")
    @classmethod
    def _patients_dir(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("patients"), dict):
            return data
        patients = dict(data["patients"])
        folder = patients.pop("dir", None)
        if folder is None:
            return data
        given = data.get("profiles_dir")
        if given is not None and str(given) != str(folder):
            raise ValueError(
                f"patients.dir ({folder}) and profiles_dir ({given}) disagree; give the "
                "profile directory once"
            )
        return {**data, "patients": patients, "profiles_dir": str(folder)}

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

    def choose(self, profiles: dict[str, SimProfile]) -> list[SimProfile]:
        """Return the experiment's patients: the selectors, then the seeded sample, if any.

        Raises:
            ConfigError: a selector matches nothing, or the sample is larger than the selection.
        """
        spec = self.patients
        if isinstance(spec, list):
            return select_profiles(profiles, spec)
        chosen = select_profiles(profiles, spec.select)
        if spec.sample is None:
            return chosen
        if spec.sample > len(chosen):
            raise ConfigError(
                f"patients.sample: {spec.sample} is more than the {len(chosen)} profiles "
                f"selected by {spec.select}; lower the sample or select more"
            )
        picked = set(random.Random(spec.seed).sample([p.id for p in chosen], spec.sample))
        return [p for p in chosen if p.id in picked]

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
    storage = data.get("storage", {})
    storage.pop("home", None)
    for key in ("url", "postgres_url"):  # a database password stays out of the snapshot
        if storage.get(key):
            storage[key] = redact_url(storage[key])
    return data
