"""Render the effective settings for people: merged YAML without secrets, and where data lives."""

from __future__ import annotations

from typing import Any

import yaml

from theramind.config import Settings
from theramind.storage_db import redact_url

_SECRET_KEYS = frozenset({"api_key"})


def public_view(settings: Settings) -> dict[str, Any]:
    """Return the settings as plain data, secrets masked and the storage home filled in.

    Masked: API keys, and the passwords of database URLs.
    """
    data = settings.model_dump(mode="json")
    for spec in data.get("models", {}).values():
        for key in _SECRET_KEYS:
            if spec.get(key):
                spec[key] = "***"
    for key in ("url", "postgres_url"):
        if data["storage"].get(key):
            data["storage"][key] = redact_url(data["storage"][key])
    data["storage"]["home"] = str(settings.home)
    return data


def render(settings: Settings) -> str:
    """Return the effective settings as YAML, headed by the storage and config directories."""
    head = (
        f"# storage home: {settings.home}\n"
        f"# config dir:   {settings.config_dir_path}\n"
        f"# memory:       {settings.memory_path if settings.memory.backend == 'chroma' else '-'}\n"
    )
    return head + yaml.safe_dump(public_view(settings), sort_keys=False, allow_unicode=True)
