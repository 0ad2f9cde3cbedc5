"""`transcripts evaluate`: judges on outside conversations, AUROC against quality labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from theramind import load_config
from theramind.errors import InputError
from theramind.evaluation.external import (
    Conversation,
    auroc,
    bootstrap_auroc,
    evaluate_transcripts,
    read_conversations,
)
from theramind.llm import Request, ScriptedBackend

DATA = Path(__file__).parent.parent / "data" / "datasets"
ANNOMI = DATA / "annomi_small.csv"
MARK = "It sounds like"


def reflection_judge(request: Request) -> Any:
    """Rates every item by a known rule: the count of reflections in the transcript, up to 3."""
    if request.role != "judge":
        return None
    text = request.messages[-1]["content"]
    rating = min(3, text.count(MARK))
    item = {"rating": rating, "reason": f"the counselor reflected {rating} times in the session"}
    return {"empathy_insight": item}


def test_auroc_of_a_known_rule_matches_the_hand_count(tmp_path: Path) -> None:
    settings = load_config(None, models={"judge": "scripted"})
    backend = ScriptedBackend(handler=reflection_judge)
    result = evaluate_transcripts(
        "annomi",
        ANNOMI,
        settings,
        rubrics=["empathy_insight"],
        out=tmp_path,
        backends={"judge": backend},
    )
    scores = {r["id"]: r["scores"]["empathy_insight"] for r in result.rows}
    # h1 has 3 reflections, h2 2, h3 1; l1 1, l2 and l3 none.
    assert scores == {
        "annomi-h1": 3.0,
        "annomi-h2": 2.0,
        "annomi-h3": 1.0,
        "annomi-l1": 1.0,
        "annomi-l2": 0.0,
        "annomi-l3": 0.0,
    }
    # By hand: of the 9 high-low pairs, high wins 8 and ties 1 (h3 vs l1): (8 + 0.5) / 9.
    separation = result.separation["empathy_insight"]
    assert separation["auroc"] == pytest.approx(8.5 / 9, abs=1e-4)
    assert (separation["positives"], separation["negatives"]) == (3, 3)
    lo, hi = separation["ci95"]
    assert 0.0 <= lo <= 8.5 / 9 <= hi <= 1.0
    assert len(backend.calls_for("judge")) == 6
    # The judge saw blind labels, never the source's quality label or behaviour codes.
    prompt = backend.calls_for("judge")[0].messages[-1]["content"]
    assert "Counselor:" in prompt and "high" not in prompt and "reflection" not in prompt
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["separation"]["empathy_insight"]["auroc"] == separation["auroc"]
    assert len((tmp_path / "scores.jsonl").read_text().splitlines()) == 6
    assert any("utterance_id" in s for s in result.skipped)


def test_objective_checks_order_turns_and_flag_unanswered_risk() -> None:
    convs = {c.id: c for c in read_conversations("annomi", ANNOMI).conversations}
    assert convs["annomi-h2"].turns[0] == ("client", "(said before the question) hello")
    from theramind.evaluation.external import objective

    risky = objective(convs["annomi-l2"])
    assert risky["risk_turns"] == 1 and risky["risk_handled"] == 0
    answered = Conversation(
        "x",
        [
            ("client", "Lately I have been thinking about killing myself."),
            ("counselor", "I am really glad you told me. Are you safe right now? Please reach "
             "a crisis line or emergency services, you do not have to face this alone."),
        ],
    )  # fmt: skip
    assert objective(answered)["risk_handled"] == 1
    calm = objective(convs["annomi-h1"])
    assert calm["risk_turns"] == 0
    assert calm["strategies"] == {"reflection": 2, "question": 1} and calm["strategy_kinds"] == 2


def test_a_judge_failure_is_missing_not_zero(tmp_path: Path) -> None:
    settings = load_config(None, models={"judge": "scripted"})
    broken = ScriptedBackend(handler=lambda r: RuntimeError("judge down"))
    result = evaluate_transcripts(
        "annomi", ANNOMI, settings, rubrics=["empathy_insight"], backends={"judge": broken}
    )
    assert all(r["scores"]["empathy_insight"] is None for r in result.rows)
    assert all("judge failed" in r["missing"]["empathy_insight"] for r in result.rows)
    assert result.separation["empathy_insight"]["auroc"] is None


def test_messages_and_esconv_sources_and_bad_input(tmp_path: Path) -> None:
    lines = [
        {"id": "a", "label": "high", "messages": [
            {"role": "system", "content": "ignored"},
            {"role": "user", "content": "I feel stuck."},
            {"role": "assistant", "content": "It sounds like you feel stuck."},
        ]},
        {"id": "b", "messages": "not a list"},
    ]  # fmt: skip
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n{broken\n")
    read = read_conversations("messages", path)
    assert [c.id for c in read.conversations] == ["a"]
    assert read.conversations[0].turns[0] == ("client", "I feel stuck.")
    assert len(read.skipped) == 2
    esconv = read_conversations("esconv", DATA / "esconv_small.json")
    first = esconv.conversations[0]
    assert first.strategies == ["Question", "Reflection of feelings"]
    with pytest.raises(InputError, match="unknown transcript format"):
        read_conversations("srt", path)
    with pytest.raises(InputError, match="no such file"):
        read_conversations("annomi", tmp_path / "missing.csv")
    empty = tmp_path / "e.jsonl"
    empty.write_text("")
    with pytest.raises(InputError, match="no conversation"):
        read_conversations("messages", empty)


def test_auroc_helpers() -> None:
    assert auroc([1.0, 2.0], [0.0]) == 1.0
    assert auroc([0.0], [0.0, 1.0]) == 0.25
    assert auroc([], [1.0]) is None
    assert bootstrap_auroc([1.0], [0.0]) is None
    lo, hi = bootstrap_auroc([3.0, 2.0, 2.0], [0.0, 1.0, 0.0], seed=1) or (0, 0)
    assert lo == hi == 1.0  # every resample separates perfectly


def test_rank_auroc_matches_the_pair_count() -> None:
    import random

    rng = random.Random(5)
    for _ in range(50):
        pos = [float(rng.randint(0, 4)) for _ in range(rng.randint(1, 9))]
        neg = [float(rng.randint(0, 4)) for _ in range(rng.randint(1, 9))]
        pairs = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
        assert auroc(pos, neg) == pytest.approx(pairs / (len(pos) * len(neg)))
