"""YAML parsed by libyaml where PyYAML has it: the pure-Python loader costs milliseconds a file.

Every experiment track reads its configs, taxonomy, profiles and locale files; with the C loader
that set-up no longer dominates a short session's CPU. The two loaders build the same objects for
the YAML these files hold; only error texts differ.
"""

from __future__ import annotations

from typing import Any

import yaml

SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""The fastest safe loader this PyYAML offers."""

YAMLError = yaml.YAMLError


def parse_yaml(text: str) -> Any:
    """Parse one YAML document safely (no Python objects), as `yaml.safe_load` does."""
    return yaml.load(text, Loader=SafeLoader)  # a safe loader, C or Python
