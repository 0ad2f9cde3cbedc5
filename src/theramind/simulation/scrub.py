"""Remove one patient from a run directory: records, header entries and the track's storage.

Each file is rewritten whole to a temporary file beside it and renamed over the original, so a
crash leaves either the old file or the scrubbed one, never half of each.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from theramind.errors import ConfigError, InputError

log = logging.getLogger(__name__)

_ID_CHARS = "A-Za-z0-9_.:-"


@dataclass
class ScrubReport:
    """What a scrub removed, and the files that still mention the patient (not JSON)."""

    records: dict[str, int] = field(default_factory=dict)
    homes: list[str] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)

    @property
    def removed(self) -> int:
        """How many records were removed in all."""
        return sum(self.records.values())


def _mentions(patient_id: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![{_ID_CHARS}]){re.escape(patient_id)}(?![{_ID_CHARS}])")


def _strip(value: Any, patient_id: str) -> tuple[Any, int]:
    """Return `value` without the patient's entries (records, list items, keys); count them."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        dropped = 0
        for key, item in value.items():
            if key == patient_id:
                dropped += 1
                continue
            out[key], n = _strip(item, patient_id)
            dropped += n
        return out, dropped
    if isinstance(value, list):
        kept: list[Any] = []
        dropped = 0
        for item in value:
            if item == patient_id or (
                isinstance(item, dict) and item.get("patient_id") == patient_id
            ):
                dropped += 1
                continue
            cleaned, n = _strip(item, patient_id)
            kept.append(cleaned)
            dropped += n
        return kept, dropped
    return value, 0


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.scrub-tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _scrub_jsonl(path: Path, patient_id: str) -> int:
    mention = _mentions(patient_id)
    lines: list[str] = []
    dropped = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:  # a line torn by a killed run
            if mention.search(line):
                dropped += 1
            else:
                lines.append(line)
            continue
        if isinstance(data, dict) and data.get("patient_id") == patient_id:
            dropped += 1
            continue
        cleaned, n = _strip(data, patient_id)
        dropped += n
        lines.append(json.dumps(cleaned, ensure_ascii=False) if n else line)
    if dropped:
        _write_atomic(path, "".join(f"{line}\n" for line in lines))
    return dropped


def _scrub_json(path: Path, patient_id: str) -> int:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); fix or remove it first") from exc
    cleaned, dropped = _strip(data, patient_id)
    if dropped:
        _write_atomic(path, json.dumps(cleaned, indent=2, ensure_ascii=False))
    return dropped


def scrub_run(run_dir: Path | str, patient_id: str) -> ScrubReport:
    """Remove every record of `patient_id` from a run directory.

    JSONL records (turns, sessions, events, scores) of the patient are dropped, the patient is
    taken out of `run.json` and other JSON files, and the patient's track homes (`homes/...`)
    are deleted. Files of other kinds that still name the patient (a rendered report, say) are
    listed in `remaining`: render them again.

    Raises:
        InputError: the patient id is empty.
        ConfigError: the directory is not a run directory.
    """
    if not isinstance(patient_id, str) or not patient_id.strip():
        raise InputError("--patient must be a non-empty patient id")
    root = Path(run_dir)
    if not (root / "run.json").is_file() and not (root / "sessions.jsonl").is_file():
        raise ConfigError(f"{root} is not a run directory (no run.json or sessions.jsonl)")
    report = ScrubReport()
    homes = root / "homes"
    if homes.is_dir():
        for track in sorted(homes.glob(f"*/*/{patient_id}")):
            if track.is_dir():
                shutil.rmtree(track)
                report.homes.append(str(track.relative_to(root)))
    mention = _mentions(patient_id)
    for path in sorted(root.rglob("*")):
        if not path.is_file() or homes in path.parents:
            continue
        name = str(path.relative_to(root))
        if path.suffix == ".jsonl":
            report.records[name] = _scrub_jsonl(path, patient_id)
        elif path.suffix == ".json":
            report.records[name] = _scrub_json(path, patient_id)
        else:
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            if mention.search(text):
                report.remaining.append(name)
            continue
        if mention.search(path.read_text(encoding="utf-8")):
            report.remaining.append(name)
    report.records = {k: v for k, v in report.records.items() if v}
    log.info("scrubbed %d records of one patient from %s", report.removed, root)
    return report
