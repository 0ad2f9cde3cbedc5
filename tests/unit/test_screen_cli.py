"""`theramind screen`: one message, a JSONL file of a thousand in one process, bad lines."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from theramind.cli import app
from theramind.safety import semantic

runner = CliRunner()

_RISKY = [
    "I want to end my life.",
    "我不想活了。",
    "Quiero morir.",
    "Aku pengen bunuh diri.",
    "I'm going to kill myself tonight.",
]
_SAFE = [
    "I had a calm week.",
    "这周过得还不错。",
    "Esta semana dormí mejor.",
    "Aku senang hari ini.",
    "This workout will kill me.",
]


def _lines(path: Path, n: int) -> list[dict[str, object]]:
    rng = random.Random(14)
    items = []
    for i in range(n):
        risky = i % 4 == 0
        text = rng.choice(_RISKY if risky else _SAFE)
        items.append({"id": f"m{i}", "text": f"{text} ({i})", "risky": risky})
    path.write_text(
        "\n".join(json.dumps({"id": x["id"], "text": x["text"]}) for x in items) + "\n",
        encoding="utf-8",
    )
    return items


def test_jsonl_of_a_thousand_lines_loads_the_models_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    items = _lines(tmp_path / "in.jsonl", 1000)
    semantic.reset()  # start this process's semantic layer afresh, to count its loads
    with caplog.at_level(logging.INFO, logger="theramind.safety.semantic"):
        result = runner.invoke(app, ["screen", "--jsonl", str(tmp_path / "in.jsonl")])
    assert result.exit_code == 0, result.output
    assert semantic.load_count() == 1
    loads = [r for r in caplog.records if "semantic risk layer loaded" in r.getMessage()]
    assert len(loads) == 1
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == [x["id"] for x in items]
    for row, item in zip(rows, items, strict=True):
        assert set(row) == {"id", "level", "categories", "language", "layers"}
        assert [layer["layer"] for layer in row["layers"]] == ["patterns", "semantic"]
        assert (row["level"] != "none") == item["risky"], (item, row)
        assert bool(row["categories"]) == (row["level"] != "none")
    assert {r["language"] for r in rows} == {"en", "zh", "es", "id"}


def test_one_message_prints_one_json_line() -> None:
    result = runner.invoke(app, ["screen", "--no-semantic", "Malam ini aku mau bunuh diri."])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert row["level"] == "high" and row["language"] == "id"
    assert "suicidal_ideation" in row["categories"]
    assert [layer["layer"] for layer in row["layers"]] == ["patterns"]


def test_bad_lines_get_an_error_object_and_the_rest_is_screened(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": 1, "text": "I want to die"}\nnot json\n{"id": 3}\n\n', "utf-8")
    result = runner.invoke(app, ["screen", "--no-semantic", "--jsonl", str(path)])
    assert result.exit_code == 2
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows[0]["id"] == 1 and rows[0]["level"] == "moderate"
    assert "not JSON" in rows[1]["error"] and '"text"' in rows[2]["error"]
    assert "2 line(s)" in result.stderr


def test_text_and_file_together_or_neither_is_a_clear_error(tmp_path: Path) -> None:
    for args in (["screen"], ["screen", "hi", "--jsonl", str(tmp_path / "x.jsonl")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and "not both or neither" in result.output
    missing = runner.invoke(app, ["screen", "--jsonl", str(tmp_path / "missing.jsonl")])
    assert missing.exit_code == 1 and "cannot read" in missing.output
