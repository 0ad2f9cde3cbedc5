"""Run exports: a simulated run as OpenAI-style `messages` JSONL, or in PsychEval's layout.

Only what was said leaves the run (the counselor's opening and replies, the patient's turns)
plus the session summary the counselor wrote at close; the simulator's hidden state (latent
scores, attitudes, responsiveness) and the counselor's internal reasoning stay out.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from theramind.errors import InputError
from theramind.evaluation.runs import Course, SessionView, load_run

log = logging.getLogger(__name__)

EXPORT_FORMATS = ("messages", "psycheval")


def dialogue(session: SessionView) -> list[tuple[str, str]]:
    """Return a session as (speaker, text) in order: the opening, then each round's two turns."""
    opening = session.log.opening or (session.turns[0].prompt if session.turns else "")
    lines = [("counselor", opening)] if opening.strip() else []
    for turn in session.turns:
        lines.append(("client", turn.patient.text))
        lines.append(("counselor", turn.response.reply))
    return lines


def session_summary(session: SessionView) -> str:
    """Return the counselor's summary written at the session's close ("" when there is none)."""
    close = session.log.counselor_close or {}
    summary = close.get("summary")
    if isinstance(summary, dict):
        summary = summary.get("summary")
    return summary if isinstance(summary, str) else ""


def messages_lines(course: Course) -> list[dict[str, Any]]:
    """Return one `messages` record per session of a course (assistant = the counselor)."""
    out = []
    for session in course.sessions:
        roles = {"counselor": "assistant", "client": "user"}
        out.append(
            {
                "id": f"{course.key.slug}-s{session.session_no}",
                "experiment": course.experiment,
                "counselor": course.key.counselor,
                "seed": course.key.seed,
                "patient_id": course.key.patient_id,
                "session_no": session.session_no,
                "language": course.profile.language if course.profile else "en",
                "messages": [{"role": roles[s], "content": t} for s, t in dialogue(session)],
            }
        )
    return out


def psycheval_case(course: Course) -> dict[str, Any]:
    """Return a course in PsychEval's case layout: the client file and its sessions."""
    profile = course.profile
    info: dict[str, Any] = {"topic": course.category}
    if profile is not None:
        info.update(
            static_traits={"age": profile.age, "gender": profile.gender},
            main_problem=profile.current_problems,
        )
    return {
        "id": course.key.slug,
        "counselor": course.key.counselor,
        "client_info": info,
        "sessions": [
            {
                "session_number": s.session_no,
                "dialogue": [{"role": r, "content": t} for r, t in dialogue(s)],
                "session_summary": session_summary(s),
                "therapies": s.log.therapies,
                "end_reason": s.log.end_reason.value,
            }
            for s in course.sessions
        ],
    }


def export_run(run_dir: Path | str, fmt: str, out: Path | str) -> int:
    """Write a run's courses to `out` in a format; return how many records were written.

    `messages` writes one JSONL line per session; `psycheval` one JSON list of cases, a case
    per course. The file is written whole and moved into place, so a failure leaves no torn one.

    Raises:
        InputError: unknown format; ConfigError: not a run directory with completed sessions.
    """
    if fmt not in EXPORT_FORMATS:
        raise InputError(f"unknown export format {fmt!r}; use one of {list(EXPORT_FORMATS)}")
    data = load_run(run_dir)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "messages":
        records = [line for course in data.courses for line in messages_lines(course)]
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    else:
        records = [psycheval_case(course) for course in data.courses]
        text = json.dumps(records, ensure_ascii=False, indent=1) + "\n"
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    log.info("exported %d %s records to %s", len(records), fmt, target)
    return len(records)
