"""Prompt templates per language, loaded from `configs/locales/<lang>/prompts.yaml`.

A language is a folder of YAML: the templates are nested mappings whose leaves are strings
with named `{slots}`. Every value put into a slot is escaped (see `escape_text`), so patient
and model text is data that can never open or close a tag of the prompt. A language without a
folder falls back to English; the `PromptSet` says so (`fallback`), and the turn record keeps
the marker. A language that lacks a key gets the English text for that key (`missing`).
"""

from __future__ import annotations

import functools
import logging
import string
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from theramind.config_files import config_base, read_yaml, resolved_path
from theramind.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_LANGUAGE = "en"
PROMPTS_FILE = "prompts.yaml"
LOCALE_FILES = (PROMPTS_FILE, "simulation.yaml")
"""The files of a language folder read here, merged (the counselor's, the simulated patient's)."""
_ESCAPES = str.maketrans({"<": "‹", ">": "›", "＜": "‹", "＞": "›", "﹤": "‹", "﹥": "›"})


def escape_text(text: str) -> str:
    """Return `text` with angle brackets replaced by look-alike quotes, so it cannot form a tag.

    Chat-template tokens (`<|im_start|>`), closing tags (`</memories>`) and opening tags all
    need `<`; the replacement keeps the text readable for the model.
    """
    return text.translate(_ESCAPES)


def normalize_language(code: str | None) -> str:
    """Return the primary subtag of a BCP-47 code in lower case ('zh-Hans-CN' → 'zh')."""
    if not code:
        return ""
    return code.strip().replace("_", "-").split("-", 1)[0].lower()


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "."))
        elif isinstance(value, str):
            flat[name] = value
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            flat.update({f"{name}.{i}": v for i, v in enumerate(value)})
        else:
            raise ConfigError(f"{name}: a prompt text must be a string, not {type(value).__name__}")
    return flat


def slots_of(template: str) -> set[str]:
    """Return the slot names a template uses."""
    return {name.split(".")[0] for _, name, _, _ in string.Formatter().parse(template) if name}


class _Escaped(dict[str, Any]):
    """Slot values for `str.format_map`: strings escaped, a missing slot a clear error."""

    def __init__(self, key: str, values: Mapping[str, Any]) -> None:
        super().__init__(
            {k: escape_text(v) if isinstance(v, str) else v for k, v in values.items()}
        )
        self.key = key

    def __missing__(self, name: str) -> Any:
        raise ConfigError(f"prompt {self.key!r} needs the slot {{{name}}}, which was not given")


class PromptSet:
    """The prompt texts of one language, with English filling any gap."""

    def __init__(
        self,
        requested: str,
        language: str,
        texts: Mapping[str, str],
        missing: tuple[str, ...] = (),
    ) -> None:
        self.requested = requested
        self.language = language
        self.texts = dict(texts)
        self._groups: dict[str, dict[str, str]] = {}
        self.missing = missing

    @property
    def fallback(self) -> bool:
        """Whether the requested language had no templates and English stands in."""
        return self.language != self.requested

    @property
    def marker(self) -> str | None:
        """The marker a turn record keeps when English stood in for the requested language."""
        return f"language:{self.requested}->{self.language}" if self.fallback else None

    def text(self, key: str) -> str:
        """Return a raw text (no slots filled)."""
        try:
            return self.texts[key]
        except KeyError:
            raise ConfigError(
                f"no prompt text {key!r} in configs/locales/{self.language}/{PROMPTS_FILE} "
                f"or the English file"
            ) from None

    def get(self, key: str, default: str) -> str:
        """Return a raw text, or `default` when neither this language nor English has it."""
        return self.texts.get(key, default)

    def render(self, key: str, /, **slots: Any) -> str:
        """Fill a template's slots; string values are escaped so they stay data."""
        return self.text(key).format_map(_Escaped(key, slots))

    def group(self, prefix: str) -> dict[str, str]:
        """Return the texts under `prefix.` keyed by the rest of their name (lists: '0', '1')."""
        found = self._groups.get(prefix)
        if found is None:  # agents ask for the same groups every turn: look them up once
            head = prefix + "."
            found = {k[len(head) :]: v for k, v in self.texts.items() if k.startswith(head)}
            self._groups[prefix] = found
        return dict(found)


def locales_dir(config_dir: Path | None = None) -> Path:
    """Return the folder holding one sub-folder of YAML per language."""
    return _locales_under(config_base(config_dir))


@functools.lru_cache(maxsize=64)
def _locales_under(base: Path) -> Path:
    # Cached: prompts are looked up on every model call.
    return base / "locales"


def available_languages(config_dir: Path | None = None) -> list[str]:
    """Return the languages that have a prompts file."""
    base = locales_dir(config_dir)
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / PROMPTS_FILE).is_file())


def _read_folder(folder: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    for name in LOCALE_FILES:
        if (folder / name).is_file():
            texts.update(_read(folder / name))
    return texts


def _read(path: Path) -> dict[str, str]:
    data = read_yaml(path) or {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of prompt names to texts")
    return _flatten(data)


def _check_slots(path: Path, texts: Mapping[str, str], english: Mapping[str, str]) -> None:
    for key, text in texts.items():
        if key not in english:
            continue  # a key English lacks is unused, but harmless
        try:
            extra = slots_of(text) - slots_of(english[key])
        except ValueError as exc:
            raise ConfigError(f"{path}: {key}: malformed template: {exc}") from exc
        if extra:
            names = ", ".join(sorted(extra))
            raise ConfigError(
                f"{path}: {key} uses slots the English template does not fill: {names}"
            )


def _list_of(key: str) -> str | None:
    """Return the list a key is an item of ('a.b.0' → 'a.b'), or None."""
    head, _, last = key.rpartition(".")
    return head if head and last.isdigit() else None


_LOCK = threading.Lock()


@functools.lru_cache(maxsize=32)
def _load(base: Path, language: str) -> PromptSet:
    english_path = base / DEFAULT_LANGUAGE / PROMPTS_FILE
    if not english_path.is_file():
        raise ConfigError(f"{english_path} is missing: the English prompts are the fallback")
    english = _read_folder(english_path.parent)
    path = base / language / PROMPTS_FILE
    if language == DEFAULT_LANGUAGE:
        return PromptSet(language, language, english)
    if not path.is_file():
        log.warning("no prompts for language %r in %s; using English", language, base)
        return PromptSet(language, DEFAULT_LANGUAGE, english)
    own = _read_folder(path.parent)
    _check_slots(path, own, english)
    lists = {_list_of(k) for k in own} - {None}
    english = {k: v for k, v in english.items() if _list_of(k) not in lists}
    missing = tuple(sorted(k for k in english if k not in own))
    if missing:
        log.warning("%s lacks %d prompt texts; English fills them", path, len(missing))
    return PromptSet(language, language, {**english, **own}, missing)


def load_prompts(language: str | None, config_dir: Path | None = None) -> PromptSet:
    """Return the prompts of `language` (a BCP-47 code), English standing in when it has none."""
    code = normalize_language(language) or DEFAULT_LANGUAGE
    with _LOCK:
        return _load(resolved_path(locales_dir(config_dir)), code)


def english(config_dir: Path | None = None) -> PromptSet:
    """Return the English prompts (the default of every agent function)."""
    return load_prompts(DEFAULT_LANGUAGE, config_dir)
