"""Crisis resources per locale, loaded from `configs/safety/resources.yaml`."""

from __future__ import annotations

import functools
import logging
import re
import threading
from pathlib import Path

from pydantic import Field, model_validator

from theramind.config import validate_file
from theramind.config_files import config_base, config_file
from theramind.strict import Strict

logger = logging.getLogger(__name__)

INTL = "intl"
_DIGITS = re.compile(r"\d[\d ]*\d|\d")


class CrisisResource(Strict):
    """One service a person in crisis can reach."""

    name: str = Field(min_length=2)
    short: str | None = Field(default=None, description="A short name replies may use instead.")
    phone: str | None = Field(default=None, pattern=r"^[0-9][0-9 ]*$")
    text: str | None = Field(default=None, pattern=r"^[0-9][0-9 ]*$")
    url: str | None = Field(default=None, pattern=r"^https://[^\s/]+\.[^\s]+$")
    description: str = ""
    source: str | None = Field(default=None, description="Where the entry was taken from.")
    checked: str | None = Field(default=None, description="When the source was last checked.")
    verify: str | None = Field(default=None, description="What to re-check before relying on it.")

    @property
    def host(self) -> str | None:
        """The URL without scheme and `www.` (how a reply usually writes it)."""
        if not self.url:
            return None
        host = self.url.split("://", 1)[1].rstrip("/")
        return host.removeprefix("www.")

    def contact(self) -> str:
        """Name the resource and how to reach it, without English words (for other languages)."""
        ways = [w for w in (self.phone, self.text if self.text != self.phone else None) if w]
        if self.host:
            ways.append(self.host)
        return " ".join([self.name, *ways])

    def render(self) -> str:
        """Describe the resource in one line."""
        ways = []
        if self.phone and self.text == self.phone:
            ways.append(f"call or text {self.phone}")
        else:
            if self.phone:
                ways.append(f"call {self.phone}")
            if self.text:
                ways.append(f"text {self.text}")
        if self.host:
            ways.append(self.host)
        line = self.name + (f": {', '.join(ways)}" if ways else "")
        return line + (f" ({self.description})" if self.description else "")


class LocaleResources(Strict):
    """The resources of one locale as written in the file."""

    name: str
    emergency: str = Field(min_length=3)
    resources: list[CrisisResource] = Field(min_length=1)
    source: str | None = Field(default=None, description="Where the emergency numbers are from.")
    checked: str | None = Field(default=None, description="When that source was last checked.")
    verify: str | None = Field(default=None, description="What to re-check before relying on it.")


class CrisisResources(LocaleResources):
    """A locale's crisis resources, resolved for use in replies and checks."""

    locale: str

    @property
    def emergency_numbers(self) -> list[str]:
        """The emergency numbers named (none for the international default)."""
        return _DIGITS.findall(self.emergency)

    def markers(self) -> list[str]:
        """Strings whose presence in a reply shows that a resource was given."""
        found: list[str] = []
        for r in self.resources:
            found += [m for m in (r.name, r.short, r.phone, r.text, r.host) if m]
        found += self.emergency_numbers or ["emergency"]
        return list(dict.fromkeys(found))

    def render(self) -> str:
        """List the resources, one per line, for a prompt or a message."""
        lines = [f"- Emergency: {self.emergency}"]
        lines += [f"- {r.render()}" for r in self.resources]
        return "\n".join(lines)


class ResourcesFile(Strict):
    """The contents of `configs/safety/resources.yaml`."""

    default: str = INTL
    aliases: dict[str, str] = Field(default_factory=dict)
    locales: dict[str, LocaleResources]

    @model_validator(mode="after")
    def _check_names(self) -> ResourcesFile:
        if self.default not in self.locales:
            raise ValueError(f"default: locale {self.default!r} is not defined")
        for alias, target in self.aliases.items():
            if target not in self.locales:
                raise ValueError(f"aliases.{alias}: locale {target!r} is not defined")
        return self


_LOAD_LOCK = threading.Lock()


@functools.lru_cache(maxsize=8)
def _load(path: Path) -> ResourcesFile:
    return validate_file(path, ResourcesFile)


def load_resources(config_dir: Path | None = None) -> ResourcesFile:
    """Load and validate (once) the crisis resources file."""
    base = config_base(config_dir)
    path = base / "safety" / "resources.yaml"
    found = config_file(path) or path  # a missing file: validate_file says so
    with _LOAD_LOCK:  # parallel first use validates the file once
        return _load(found)


def _resolve(locale: str, spec: ResourcesFile) -> str | None:
    key = locale.strip().lower().replace("_", "-")
    candidates = [key, key.rsplit("-", 1)[-1]]
    for cand in candidates:
        cand = spec.aliases.get(cand, cand)
        if cand in spec.locales:
            return cand
    return None


def crisis_resources(locale: str, config_dir: Path | None = None) -> CrisisResources:
    """Return a locale's crisis resources (an unknown locale gets the default, with a warning)."""
    spec = load_resources(config_dir)
    key = _resolve(locale or "", spec)
    if key is None:
        logger.warning("no crisis resources for locale %r; using %r", locale, spec.default)
        key = spec.default
    return CrisisResources(locale=key, **spec.locales[key].model_dump())
