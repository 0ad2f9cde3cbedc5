"""`theramind screen`: run the risk screen on a message or on a JSONL file of messages.

One JSON object per message goes to stdout: `id`, `level`, `categories`, `language` and
`layers` (each layer's own verdict and evidence). The patterns and the semantic layer load once
for the whole file; messages are screened in batches so the encoder embeds them together.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from theramind.errors import InputError
from theramind.records import RiskScreen

BATCH = 64


def result_json(item_id: Any, result: RiskScreen) -> dict[str, Any]:
    """Return the output object for one screened message."""
    return {
        "id": item_id,
        "level": result.level,
        "categories": result.categories,
        "language": result.language,
        "layers": [v.model_dump(mode="json") for v in result.layers],
    }


def read_jsonl(lines: Sequence[str] | IO[str]) -> Iterator[tuple[Any, str | None, str]]:
    """Yield (id, text, error) per non-blank line; text is None when the line is unusable."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, None, f"line {number}: not JSON ({exc.msg}); write one object a line"
            continue
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            yield number, None, f'line {number}: needs an object with a string "text"'
            continue
        yield item.get("id", number), item["text"], ""


def run_screen(
    text: str | None,
    jsonl: Path | None,
    *,
    out: IO[str],
    languages: Sequence[str] | None = None,
    config_dir: Path | None = None,
    semantic: bool = True,
) -> int:
    """Screen TEXT or every line of a JSONL file; write one JSON line each; return bad lines.

    Raises:
        InputError: Neither or both of TEXT and the file were given, or the file is unreadable.
    """
    from theramind.safety import screen_many

    if (text is None) == (jsonl is None):
        raise InputError("give a message to screen or --jsonl FILE, not both or neither")

    def flush(batch: list[tuple[Any, str]]) -> None:
        results = screen_many(
            [t for _, t in batch], languages=languages, config_dir=config_dir, semantic=semantic
        )
        for (item_id, _), result in zip(batch, results, strict=True):
            out.write(json.dumps(result_json(item_id, result), ensure_ascii=False) + "\n")

    if text is not None:
        flush([(None, text)])
        return 0
    assert jsonl is not None
    bad = 0
    try:
        handle = sys.stdin if str(jsonl) == "-" else jsonl.open(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{jsonl}: cannot read it ({exc.strerror}); check the path") from exc
    with handle:
        batch: list[tuple[Any, str]] = []
        for item_id, item_text, error in read_jsonl(handle):
            if item_text is None:
                flush(batch)
                batch = []
                out.write(json.dumps({"id": item_id, "error": error}) + "\n")
                bad += 1
                continue
            batch.append((item_id, item_text))
            if len(batch) >= BATCH:
                flush(batch)
                batch = []
        flush(batch)
    return bad
