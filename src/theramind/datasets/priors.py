"""Seeded priors by category for what a dataset cannot give: hidden state and therapy response.

Every imported profile needs a starting latent state (PHQ-9-like, GAD-7-like, alliance) and a
hidden responsiveness to each therapy of the catalog, so that imported cohorts can run the
objective-outcome metrics. Public datasets carry neither, so they come from the table below:
per category a typical severity, the two therapies the literature most often recommends for
that kind of problem (the patient's clear responders), and a seeded jitter so that a cohort of
one category is not a set of clones. The same seed and record id always give the same values.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

THERAPIES: tuple[str, ...] = (
    "cbt",
    "act",
    "psychodynamic",
    "person_centred",
    "dbt",
    "sfbt",
    "mi",
    "ipt",
)
STRONG = (0.72, 0.9)
"""Range of responsiveness of the category's responder therapies (>= the RESPONSIVE mark)."""
WEAK = (0.2, 0.6)
"""Range for every other therapy (clearly below the mark)."""


@dataclass(frozen=True)
class Prior:
    """The typical start of a category: severities, alliance, resistance, responder therapies."""

    phq9: int
    gad7: int
    alliance: float
    resistance: float
    responders: tuple[str, str]


PRIORS: dict[str, Prior] = {
    "love": Prior(12, 9, 0.5, 0.55, ("person_centred", "ipt")),
    "emotion": Prior(15, 9, 0.45, 0.6, ("cbt", "act")),
    "self-growth": Prior(9, 8, 0.55, 0.5, ("act", "sfbt")),
    "social": Prior(10, 11, 0.45, 0.6, ("cbt", "ipt")),
    "anxiety": Prior(9, 15, 0.45, 0.6, ("cbt", "act")),
    "rare": Prior(12, 12, 0.4, 0.65, ("psychodynamic", "person_centred")),
    "stress": Prior(11, 12, 0.5, 0.55, ("cbt", "sfbt")),
    "addiction": Prior(14, 11, 0.35, 0.75, ("mi", "dbt")),
    "youth": Prior(11, 10, 0.4, 0.65, ("person_centred", "sfbt")),
    "family": Prior(11, 10, 0.45, 0.6, ("ipt", "psychodynamic")),
}
NAMES = (
    "Alex", "Sam", "Robin", "Kim", "Noor", "Jules", "Rene", "Toni", "Kai", "Mika",
    "Dana", "Ari", "Lou", "Nico", "Yuki", "Sasha", "Remy", "Eli", "Jo", "Max",
)  # fmt: skip
ZH_NAMES = ("小林", "小周", "阿杰", "小雨", "思远", "晓晴", "子涵", "明轩", "嘉怡", "浩然")


def rng_for(seed: int, key: str) -> random.Random:
    """Return a generator fixed by the seed and a record key (stable across runs and machines)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def latent_prior(category: str, rng: random.Random) -> dict[str, float | int]:
    """Return a starting latent state drawn around the category's prior."""
    prior = PRIORS[category]
    return {
        "phq9": max(0, min(27, prior.phq9 + rng.randint(-3, 3))),
        "gad7": max(0, min(21, prior.gad7 + rng.randint(-3, 3))),
        "alliance": round(max(0.1, min(0.9, prior.alliance + rng.uniform(-0.1, 0.1))), 2),
    }


def latent_from_intensity(
    category: str, intensity: float, rng: random.Random
) -> dict[str, float | int]:
    """Return a latent state scaled by a 1-5 emotion intensity (ESConv's initial survey score).

    Intensity 1 maps to mild (PHQ-9 about 5) and 5 to severe (about 22); the category's prior
    shares the load between depression and anxiety scores.
    """
    prior = PRIORS[category]
    level = (max(1.0, min(5.0, intensity)) - 1.0) / 4.0
    total = prior.phq9 + prior.gad7
    phq_share, gad_share = prior.phq9 / total, prior.gad7 / total
    phq9 = round(5 + 17 * level * (2 * phq_share)) + rng.randint(-1, 1)
    gad7 = round(4 + 13 * level * (2 * gad_share)) + rng.randint(-1, 1)
    return {
        "phq9": max(0, min(27, phq9)),
        "gad7": max(0, min(21, gad7)),
        "alliance": round(max(0.1, min(0.9, prior.alliance + rng.uniform(-0.1, 0.1))), 2),
    }


def responsiveness_prior(category: str, rng: random.Random) -> dict[str, float]:
    """Return a hidden responsiveness per therapy: the category's two responders clearly high."""
    responders = PRIORS[category].responders
    return {
        t: round(rng.uniform(*STRONG) if t in responders else rng.uniform(*WEAK), 2)
        for t in THERAPIES
    }


def resistance_prior(category: str, rng: random.Random) -> float:
    """Return how long a negative attitude persists, around the category's prior."""
    return round(max(0.2, min(0.9, PRIORS[category].resistance + rng.uniform(-0.1, 0.1))), 2)


def age_prior(rng: random.Random) -> int:
    """Return an adult age for a source that gives none."""
    return rng.randint(19, 60)


def name_prior(rng: random.Random, language: str = "en") -> str:
    """Return a neutral pseudonym for a source that gives none (a Chinese one for `zh`)."""
    return rng.choice(ZH_NAMES if language == "zh" else NAMES)


def fill_hidden(
    data: dict[str, Any], defaulted: list[str], category: str, rng: random.Random
) -> None:
    """Fill latent state, responsiveness and resistance from priors where the data lacks them."""
    if "latent" not in data:
        data["latent"] = latent_prior(category, rng)
        defaulted.append("latent")
    if "responsiveness" not in data:
        data["responsiveness"] = responsiveness_prior(category, rng)
        defaulted.append("responsiveness")
    if "resistance" not in data:
        data["resistance"] = resistance_prior(category, rng)
        defaulted.append("resistance")
