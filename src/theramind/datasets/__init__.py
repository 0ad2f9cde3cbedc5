"""Importers that turn public counseling datasets into validated simulated-patient profiles."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from theramind.datasets import ccd, esconv, psycheval, report, tabular
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

if TYPE_CHECKING:
    from theramind.config import Settings
    from theramind.llm import BaseBackend

FORMATS: dict[str, tuple[Reader, Converter]] = {
    "esconv": (esconv.read, esconv.convert),
    "psycheval": (psycheval.read, psycheval.convert),
    "ccd": (ccd.read, ccd.convert),
    "report": (report.read, report.convert),
    "jsonl": (tabular.read_jsonl, tabular.convert),
    "csv": (tabular.read_csv, tabular.convert),
}
MAPPED = ("jsonl", "csv")
"""Formats that take a field mapping (`--map FIELD=COLUMN`)."""


def import_profiles(
    fmt: str,
    source: Path | str,
    out: Path | str,
    therapy_ids: Sequence[str],
    seed: int = 0,
    mapping: Mapping[str, str] | None = None,
    settings: Settings | None = None,
    backends: Mapping[str, BaseBackend] | None = None,
) -> ImportResult:
    """Import every record of a dataset file in a known format into profile YAML under `out`.

    `report` extracts with the `patient` model role of `settings` (default: the config's).

    Raises:
        InputError: unknown format, a mapping for a format that takes none or naming an
            unknown field, or a source that is missing or unreadable as a whole.
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; use one of {sorted(FORMATS)}")
    reader, converter = FORMATS[fmt]
    if mapping and fmt not in MAPPED:
        raise InputError(f"--map applies to {list(MAPPED)} only, not {fmt!r}")
    if fmt in MAPPED:
        converter = functools.partial(tabular.convert, mapping=tabular.check_mapping(mapping or {}))
    if fmt != "report":
        return run_import(reader, converter, fmt, Path(source), Path(out), therapy_ids, seed)
    from theramind.config import load_config
    from theramind.llm import ModelRouter

    router = ModelRouter(settings or load_config(), backends=backends)
    try:
        converter = functools.partial(report.convert, router=router)
        return run_import(reader, converter, fmt, Path(source), Path(out), therapy_ids, seed)
    finally:
        router.close()


__all__ = [
    "FORMATS",
    "MAPPED",
    "Draft",
    "ImportResult",
    "RecordError",
    "Rejection",
    "import_profiles",
]
