"""Simulated patient profiles: YAML files validated on load, and the counselor's view of them."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, get_args

from pydantic import Field, field_validator, model_validator

from theramind.config import default_config_dir, validate_file
from theramind.errors import ConfigError
from theramind.records import PatientProfile
from theramind.strict import Strict
from theramind.text import word_units

log = logging.getLogger(__name__)

Category = Literal[
    "love",
    "emotion",
    "self-growth",
    "social",
    "anxiety",
    "rare",
    "stress",
    "addiction",
    "youth",
    "family",
]
CATEGORIES: tuple[str, ...] = get_args(Category)
Style = Literal["plain", "upset", "verbose", "reserved", "tangent", "pleasing"]
STYLES: tuple[str, ...] = get_args(Style)
RESPONSIVE = 0.7
"""Responsiveness at or above this marks a therapy the patient clearly responds to."""
GUIDANCE_WORDS = 40


class Disclosure(Strict):
    """A fact the patient reveals only when ready: from a session, after some rounds, with trust."""

    text: str = Field(min_length=3, max_length=240, description="The fact, in the patient's words.")
    session: int = Field(default=1, ge=1, le=12, description="Earliest session it may come up.")
    after_round: int = Field(default=1, ge=1, le=12, description="Earliest round in that session.")
    trust: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Alliance the patient needs before telling it."
    )


class LatentStart(Strict):
    """Initial hidden symptom scores (PHQ-9-like 0-27, GAD-7-like 0-21)."""

    phq9: int = Field(ge=0, le=27)
    gad7: int = Field(ge=0, le=21)
    alliance: float = Field(default=0.5, ge=0.0, le=1.0, description="Initial trust, 0 to 1.")


class ProfileSource(Strict):
    """Where an imported profile came from, and which of its fields the source did not give."""

    format: str = Field(min_length=1, max_length=20, description="Importer format, e.g. esconv.")
    file: str = Field(min_length=1, max_length=400)
    record: str = Field(min_length=1, max_length=80, description="Record id or index in the file.")
    language: str = Field(default="en", max_length=10, description="Language of the case text.")
    defaulted: list[str] = Field(
        default_factory=list, description="Fields filled from documented priors or defaults."
    )
    notes: str = Field(default="", max_length=400)


class SimProfile(Strict):
    """Everything the simulator knows about one patient; the counselor sees only `intake()`."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    pseudonym: str = Field(min_length=1, max_length=40)
    age: int = Field(ge=12, le=100)
    gender: str = Field(default="", max_length=30)
    language: str = Field(
        default="en", pattern=r"^[a-z]{2,3}$", description="The language the patient speaks."
    )
    category: Category
    style: Style
    mental_health_history: str = Field(min_length=1, max_length=800)
    physical_health_history: str = Field(min_length=1, max_length=600)
    current_problems: str = Field(min_length=1, max_length=800)
    symptoms: list[str] = Field(min_length=1, max_length=10)
    concerns: list[str] = Field(
        min_length=1, max_length=6, description="Worries in the patient's own words, first person."
    )
    guidance: list[str] = Field(
        min_length=1, max_length=12, description="Per-session guidance, patient's view, session 1.."
    )
    disclosures: list[Disclosure] = Field(default_factory=list, max_length=12)
    tangents: list[str] = Field(default_factory=list, max_length=8)
    latent: LatentStart
    responsiveness: dict[str, float] = Field(
        description="Hidden response (0..1) to each therapy id of the catalog."
    )
    resistance: float = Field(
        default=0.6, ge=0.0, le=0.95, description="How long a negative attitude persists (Markov)."
    )
    source: ProfileSource | None = Field(default=None, description="Set on imported profiles.")

    @field_validator("guidance")
    @classmethod
    def _short_guidance(cls, value: list[str]) -> list[str]:
        for i, text in enumerate(value, start=1):
            words = word_units(text)
            if words > GUIDANCE_WORDS:
                raise ValueError(
                    f"session {i} guidance has {words} words; the limit is {GUIDANCE_WORDS}"
                )
        return value

    @field_validator("responsiveness")
    @classmethod
    def _bounded(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if not 0.0 <= v <= 1.0}
        if bad:
            raise ValueError(f"values must lie in 0..1: {bad}")
        return value

    @model_validator(mode="after")
    def _clear_responders(self) -> SimProfile:
        strong = [t for t, v in self.responsiveness.items() if v >= RESPONSIVE]
        if not 1 <= len(strong) <= 2:
            found = strong or "none"
            raise ValueError(
                f"responsiveness: expected one or two therapies >= {RESPONSIVE}, got {found}"
            )
        return self

    @property
    def responsive_therapies(self) -> list[str]:
        """The therapies this patient clearly responds to."""
        return [t for t, v in self.responsiveness.items() if v >= RESPONSIVE]

    def guidance_for(self, session_no: int) -> str:
        """Return the guidance for a session (the last one repeats past the end)."""
        return self.guidance[min(session_no, len(self.guidance)) - 1]

    def check_catalog(self, therapy_ids: Iterable[str]) -> None:
        """Raise ValueError unless responsiveness names exactly the catalog's therapies."""
        ids = set(therapy_ids)
        unknown = sorted(set(self.responsiveness) - ids)
        missing = sorted(ids - set(self.responsiveness))
        if unknown:
            raise ValueError(f"unknown therapy ids {unknown}; the catalog has {sorted(ids)}")
        if missing:
            raise ValueError(f"missing therapy ids {missing}")

    def intake(self) -> PatientProfile:
        """Return what the counselor may know at intake: no latent state, guidance or plans."""
        from theramind.locales import load_prompts

        labels = load_prompts(self.language).group("simulation.intake")
        end = labels["end"]
        return PatientProfile(
            patient_id=self.id,
            pseudonym=self.pseudonym,
            age=self.age,
            history=(
                f"{labels['mental']}{self.mental_health_history.strip()} "
                f"{labels['physical']}{self.physical_health_history.strip()}"
            ),
            presenting_problem=(
                f"{self.current_problems.strip()} {labels['symptoms']}"
                f"{labels['separator'].join(self.symptoms)}{end}"
            ),
            category=self.category,
            language=self.language,
        )


def patients_dir(config_dir: Path | None = None) -> Path:
    """Return the directory of the bundled profiles."""
    return (config_dir or default_config_dir()) / "patients"


def load_profile(path: Path | str, therapy_ids: Sequence[str] | None = None) -> SimProfile:
    """Load and validate one profile; errors name the file and the field.

    Raises:
        ConfigError: the file is missing, not YAML, or fails validation.
    """
    path = Path(path)
    profile = validate_file(path, SimProfile)
    if therapy_ids is not None:
        try:
            profile.check_catalog(therapy_ids)
        except ValueError as exc:
            raise ConfigError(f"{path}: responsiveness: {exc}") from exc
    return profile


def load_profiles(
    directory: Path | str | None = None, therapy_ids: Sequence[str] | None = None
) -> dict[str, SimProfile]:
    """Load every `*.yaml` profile of a directory, keyed by id (ids must be unique)."""
    root = Path(directory) if directory else patients_dir()
    if not root.is_dir():
        raise ConfigError(f"{root}: no such profile directory")
    profiles: dict[str, SimProfile] = {}
    for path in sorted(root.glob("*.yaml")):
        profile = load_profile(path, therapy_ids)
        if profile.id in profiles:
            raise ConfigError(f"{path}: id: {profile.id!r} is used by another profile")
        profiles[profile.id] = profile
    if not profiles:
        raise ConfigError(f"{root}: no *.yaml profiles found")
    return profiles


def select_profiles(profiles: dict[str, SimProfile], selectors: Sequence[str]) -> list[SimProfile]:
    """Pick profiles by id, `category:NAME`, `language:CODE` or `all`, in order, without repeats.

    Raises:
        ConfigError: a selector matches nothing.
    """
    chosen: dict[str, SimProfile] = {}
    for selector in selectors:
        if selector == "all":
            matched = list(profiles.values())
        elif selector.startswith("category:"):
            name = selector.split(":", 1)[1]
            if name not in CATEGORIES:
                raise ConfigError(f"patients: unknown category {name!r}; use one of {CATEGORIES}")
            matched = [p for p in profiles.values() if p.category == name]
        elif selector.startswith("language:"):
            code = selector.split(":", 1)[1]
            matched = [p for p in profiles.values() if p.language == code]
        elif selector in profiles:
            matched = [profiles[selector]]
        else:
            raise ConfigError(f"patients: no profile with id {selector!r}")
        if not matched:
            raise ConfigError(f"patients: {selector!r} matches no profile")
        for profile in matched:
            chosen.setdefault(profile.id, profile)
    return list(chosen.values())
