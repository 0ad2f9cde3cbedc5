"""Importers that turn public counseling datasets into validated simulated-patient profiles."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from theramind.datasets import esconv, psycheval
from theramind.datasets.common import (
    Converter,
    Draft,
    ImportResult,
    Reader,
    RecordError,
    Rejection,
    run_import,
)
from theramind.errors import InputError

FORMATS: dict[str, tuple[Reader, Converter]] = {
    "esconv": (esconv.read, esconv.convert),
    "psycheval": (psycheval.read, psycheval.convert),
}


def import_profiles(
    fmt: str, source: Path | str, out: Path | str, therapy_ids: Sequence[str], seed: int = 0
) -> ImportResult:
    """Import every record of a dataset file in a known format into profile YAML under `out`.

    Raises:
        InputError: unknown format, or a source that is missing or unreadable as a whole.
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; use one of {sorted(FORMATS)}")
    reader, converter = FORMATS[fmt]
    return run_import(reader, converter, fmt, Path(source), Path(out), therapy_ids, seed)


__all__ = ["FORMATS", "Draft", "ImportResult", "RecordError", "Rejection", "import_profiles"]
