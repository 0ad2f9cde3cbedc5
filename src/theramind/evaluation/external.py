"""Judging conversations TheraMind did not produce: AnnoMI CSV, ESConv JSON, `messages` JSONL.

Each conversation is read into a neutral form (counselor and client turns, an optional quality
label, the counselor's labelled strategies where the source has them), rendered for the judge
under the same blind speaker labels as a simulated session, and scored with the session
rubrics. Objective checks that need no hidden state come alongside: reply length, risk handling
(the deterministic screen on client turns, the crisis-reply check on the counselor's answer)
and strategy use. When conversations carry a quality label (AnnoMI's `mi_quality`), the
summary gives each rubric's separation of the groups: AUROC with a bootstrap interval.
"""

from __future__ import annotations

import csv
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from theramind.config import Settings
from theramind.errors import InputError
from theramind.evaluation.judge import ROLE, judge_messages, verdict_tokens
from theramind.evaluation.rubrics import Rubric, load_rubrics, select_rubrics, verdict_schema
from theramind.evaluation.transcript import CLIENT, COUNSELOR, fit_lines, opaque_id
from theramind.llm import BaseBackend, ModelRouter
from theramind.records import RISK_ORDER
from theramind.text import word_units

log = logging.getLogger(__name__)

FORMATS = ("annomi", "esconv", "messages")
POSITIVE = "high"
"""The label counted as the positive class of the AUROC (AnnoMI's high-quality sessions)."""
BOOTSTRAP = 1000
COUNSELOR_ROLES = {"therapist", "counselor", "supporter", "sys", "assistant"}
CLIENT_ROLES = {"client", "seeker", "usr", "user", "patient"}


@dataclass
class Conversation:
    """One conversation from outside: ordered (speaker, text) turns and what the source labels."""

    id: str
    turns: list[tuple[str, str]]
    label: str | None = None
    language: str = "en"
    strategies: list[str] = field(default_factory=list)

    def counselor_turns(self) -> list[str]:
        """The counselor's turns in order."""
        return [t for s, t in self.turns if s == "counselor"]


@dataclass
class ReadResult:
    """Conversations read from a source, and what was left out with the reason."""

    conversations: list[Conversation] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _speaker(raw: Any) -> str | None:
    role = str(raw or "").strip().lower()
    if role in COUNSELOR_ROLES:
        return "counselor"
    if role in CLIENT_ROLES:
        return "client"
    return None


def read_annomi(path: Path) -> ReadResult:
    """Read AnnoMI's CSV: one row an utterance, grouped by `transcript_id`, ordered by id.

    Raises:
        InputError: the file is unreadable or lacks a required column.
    """
    required = {"transcript_id", "utterance_id", "interlocutor", "utterance_text"}
    result = ReadResult()
    groups: dict[str, list[tuple[int, str, str, str]]] = {}
    labels: dict[str, str] = {}
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = required - set(reader.fieldnames or [])
            if missing:
                raise InputError(f"{path}: not AnnoMI CSV; missing columns {sorted(missing)}")
            for line, row in enumerate(reader, start=2):
                tid = (row.get("transcript_id") or "").strip()
                speaker = _speaker(row.get("interlocutor"))
                text = (row.get("utterance_text") or "").strip()
                try:
                    order = int(row.get("utterance_id") or "")
                except ValueError:
                    result.skipped.append(f"line {line}: utterance_id: not a number")
                    continue
                if not tid or speaker is None or not text:
                    what = "transcript_id" if not tid else "interlocutor" if not speaker else "text"
                    result.skipped.append(f"line {line}: {what}: missing or unknown")
                    continue
                behaviour = (row.get("main_therapist_behaviour") or "").strip()
                groups.setdefault(tid, []).append((order, speaker, text, behaviour))
                quality = (row.get("mi_quality") or "").strip().lower()
                if quality:
                    labels.setdefault(tid, quality)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read as CSV: {exc}") from exc
    for tid, rows in groups.items():
        rows.sort(key=lambda r: r[0])
        turns = [(s, t) for _, s, t, _ in rows]
        strategies = [b for _, s, _, b in rows if s == "counselor" and b and b.lower() != "n/a"]
        conv = Conversation(f"annomi-{tid}", turns, labels.get(tid), "en", strategies)
        _keep(conv, result)
    return result


def read_esconv(path: Path) -> ReadResult:
    """Read ESConv JSON: `dialog[{speaker, content, annotation.strategy}]` per record."""
    from theramind.datasets.common import read_json_records

    result = ReadResult()
    for ref, record in read_json_records(path):
        dialog = record.get("dialog") if isinstance(record, dict) else None
        if not isinstance(dialog, list):
            result.skipped.append(f"record {ref}: dialog: missing or not a list")
            continue
        turns, strategies = [], []
        for turn in dialog:
            if not isinstance(turn, dict) or not isinstance(turn.get("content"), str):
                continue
            speaker = _speaker(turn.get("speaker"))
            if speaker is None or not turn["content"].strip():
                continue
            turns.append((speaker, turn["content"].strip()))
            note = turn.get("annotation")
            if speaker == "counselor" and isinstance(note, dict) and note.get("strategy"):
                strategies.append(str(note["strategy"]))
        _keep(Conversation(f"esconv-{ref}", turns, None, "en", strategies), result)
    return result


def read_messages(path: Path) -> ReadResult:
    """Read OpenAI-style JSONL: `{"messages": [{role, content}], "id"?, "label"?}` a line."""
    result = ReadResult()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            result.skipped.append(f"line {n}: not JSON: {exc.msg}")
            continue
        messages = item.get("messages") if isinstance(item, dict) else None
        if not isinstance(messages, list):
            result.skipped.append(f"line {n}: messages: missing or not a list")
            continue
        turns = []
        for m in messages:
            if isinstance(m, dict) and isinstance(m.get("content"), str):
                speaker = _speaker(m.get("role"))
                if speaker is not None and m["content"].strip():
                    turns.append((speaker, m["content"].strip()))
        label = item.get("label")
        conv = Conversation(
            str(item.get("id") or f"line-{n}"),
            turns,
            str(label).lower() if label is not None else None,
            str(item.get("language") or "en"),
        )
        _keep(conv, result)
    return result


def _keep(conv: Conversation, result: ReadResult) -> None:
    if not conv.counselor_turns() or len(conv.turns) < 2:
        result.skipped.append(f"{conv.id}: fewer than two turns or no counselor turn")
    else:
        result.conversations.append(conv)


READERS: dict[str, Callable[[Path], ReadResult]] = {
    "annomi": read_annomi,
    "esconv": read_esconv,
    "messages": read_messages,
}


def read_conversations(fmt: str, source: Path | str) -> ReadResult:
    """Read a source in a known format.

    Raises:
        InputError: unknown format, missing file, or nothing usable in it.
    """
    if fmt not in READERS:
        raise InputError(f"unknown transcript format {fmt!r}; use one of {list(FORMATS)}")
    path = Path(source)
    if not path.is_file():
        raise InputError(f"{path}: no such file; give the transcript file to evaluate")
    result = READERS[fmt](path)
    if not result.conversations:
        why = "; ".join(result.skipped[:3]) or "the file is empty"
        raise InputError(f"{path}: no conversation to evaluate ({why})")
    return result


def render(conv: Conversation, max_chars: int = 12000) -> tuple[str, str]:
    """Return the judge's transcript of a conversation and its opaque id."""
    names = {"counselor": COUNSELOR, "client": CLIENT}
    lines = [f"{names[s]}: {' '.join(t.split())}" for s, t in conv.turns]
    return "\n".join(fit_lines(lines, max_chars)), opaque_id("external", conv.id)


def judge_one(
    rubric: Rubric, router: ModelRouter, conv: Conversation, max_chars: int = 12000
) -> tuple[float | None, str]:
    """Score one conversation on one rubric; a judge failure is a missing score, never a zero."""
    text, tid = render(conv, max_chars)
    messages = judge_messages(rubric, text, tid, language=conv.language)
    try:
        result = router.structured(
            ROLE, messages, verdict_schema(rubric), max_tokens=verdict_tokens(rubric)
        )
    except Exception as exc:  # any judge failure leaves the score missing and says why
        log.warning("judge failed on %s for %s: %s", rubric.id, conv.id, exc)
        return None, f"judge failed: {type(exc).__name__}: {exc}"[:300]
    return rubric.score(result.value), ""


def objective(conv: Conversation, locale: str = "intl") -> dict[str, Any]:
    """Checks that need no hidden state: reply length, risk handling, labelled strategy use.

    `locale` picks the crisis resources a reply to a risky turn is checked against (the
    config's `safety.locale`).
    """
    from theramind.safety import check_crisis_reply, crisis_resources, screen

    replies = conv.counselor_turns()
    risky = 0
    handled = 0
    for i, (speaker, text) in enumerate(conv.turns):
        if speaker != "client":
            continue
        verdict = screen(text, semantic=False)
        if RISK_ORDER[verdict.level] < RISK_ORDER["moderate"]:
            continue
        risky += 1
        answer = next((t for s, t in conv.turns[i + 1 :] if s == "counselor"), "")
        resources = crisis_resources(locale)
        if answer and not check_crisis_reply(answer, resources, verdict.categories):
            handled += 1
    counts = Counter(conv.strategies)
    return {
        "reply_words": round(sum(word_units(r) for r in replies) / len(replies), 2),
        "counselor_share": round(len(replies) / len(conv.turns), 3),
        "risk_turns": risky,
        "risk_handled": handled,
        "strategies": dict(counts.most_common()),
        "strategy_kinds": len(counts),
    }


def auroc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """Return P(score of a positive > score of a negative), ties counting half (None if empty).

    Computed from ranks (the Mann-Whitney U), so a bootstrap over hundreds of transcripts
    stays fast.
    """
    if not positives or not negatives:
        return None
    pooled = sorted([(v, 1) for v in positives] + [(v, 0) for v in negatives])
    rank_sum = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        mean_rank = (i + j) / 2 + 1
        rank_sum += mean_rank * sum(flag for _, flag in pooled[i : j + 1])
        i = j + 1
    n_pos, n_neg = len(positives), len(negatives)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def bootstrap_auroc(
    positives: Sequence[float], negatives: Sequence[float], *, n: int = BOOTSTRAP, seed: int = 0
) -> tuple[float, float] | None:
    """Return a 95% percentile interval of the AUROC, resampling each group with replacement."""
    if len(positives) < 2 or len(negatives) < 2:
        return None
    rng = random.Random(seed)
    values = []
    for _ in range(n):
        pos = rng.choices(positives, k=len(positives))
        neg = rng.choices(negatives, k=len(negatives))
        value = auroc(pos, neg)
        if value is not None:
            values.append(value)
    values.sort()
    return values[int(0.025 * (len(values) - 1))], values[int(0.975 * (len(values) - 1))]


@dataclass
class TranscriptEvaluation:
    """Per-conversation scores and checks, and per-rubric separation of the labelled groups."""

    source: str
    fmt: str
    judge_model: str
    rows: list[dict[str, Any]]
    separation: dict[str, dict[str, Any]]
    skipped: list[str]
    seconds: float

    def summary(self) -> dict[str, Any]:
        """Return the summary written as `summary.json`."""
        return {
            "source": self.source,
            "format": self.fmt,
            "judge_model": self.judge_model,
            "conversations": len(self.rows),
            "skipped": self.skipped,
            "separation": self.separation,
            "seconds": round(self.seconds, 3),
        }


def evaluate_transcripts(
    fmt: str,
    source: Path | str,
    settings: Settings,
    *,
    rubrics: Sequence[str] | None = None,
    rubrics_dir: Path | str | None = None,
    out: Path | str | None = None,
    backends: Mapping[str, BaseBackend] | None = None,
    concurrency: int = 2,
    seed: int = 0,
) -> TranscriptEvaluation:
    """Judge every conversation of a source on the session rubrics; write scores and summary.

    Raises:
        InputError: bad format or source; ConfigError: an unknown rubric id.
    """
    started = time.perf_counter()
    read = read_conversations(fmt, source)
    chosen = select_rubrics(load_rubrics(rubrics_dir), rubrics or None)
    chosen = [r for r in chosen if r.scope == "session"] if not rubrics else chosen
    router = ModelRouter(settings, backends=backends)
    locale = settings.safety.locale
    rows: list[dict[str, Any]] = []
    try:
        model = router.model_id(ROLE)
        for conv in read.conversations:
            rows.append(
                {
                    "id": conv.id,
                    "label": conv.label,
                    "scores": {},
                    "checks": objective(conv, locale),
                }
            )
        jobs = [(r, i) for r in chosen for i in range(len(read.conversations))]
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            scores = list(
                pool.map(lambda job: judge_one(job[0], router, read.conversations[job[1]]), jobs)
            )
    finally:
        router.close()
    for (rubric, i), (value, why) in zip(jobs, scores, strict=True):
        rows[i].setdefault("scores", {})[rubric.id] = value
        if why:
            rows[i].setdefault("missing", {})[rubric.id] = why
    separation = {r.id: separation_of(rows, r.id, seed) for r in chosen}
    result = TranscriptEvaluation(
        str(source), fmt, model, rows, separation, read.skipped, time.perf_counter() - started
    )
    if out is not None:
        write(result, Path(out))
    return result


def separation_of(rows: list[dict[str, Any]], rubric: str, seed: int = 0) -> dict[str, Any]:
    """Return the AUROC of `high` over the other labels for one rubric, with its interval."""
    labelled = [
        (r["label"], r["scores"][rubric])
        for r in rows
        if r.get("label") and r.get("scores", {}).get(rubric) is not None
    ]
    pos = [v for label, v in labelled if label == POSITIVE]
    neg = [v for label, v in labelled if label != POSITIVE]
    value = auroc(pos, neg)
    interval = bootstrap_auroc(pos, neg, seed=seed)
    return {
        "auroc": None if value is None else round(value, 4),
        "ci95": None if interval is None else [round(interval[0], 4), round(interval[1], 4)],
        "positives": len(pos),
        "negatives": len(neg),
    }


def write(result: TranscriptEvaluation, out: Path) -> None:
    """Write `scores.jsonl` (a line per conversation) and `summary.json` under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(row, ensure_ascii=False) for row in result.rows]
    for name, text in (
        ("scores.jsonl", "\n".join(lines) + "\n"),
        ("summary.json", json.dumps(result.summary(), indent=1, ensure_ascii=False) + "\n"),
    ):
        tmp = out / f"{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out / name)
