"""Reading a run without opening its JSONL.

What it holds (counselors × patients × sessions,
complete or not), and any session's transcript with the decisions behind each turn.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich import box
from rich.console import RenderableType
from rich.padding import Padding
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from theramind.errors import ConfigError
from theramind.evaluation.console import WIDTH, fit_columns
from theramind.evaluation.decisions import applied_step, is_overridden, recorded, step_text
from theramind.evaluation.runs import read_header
from theramind.simulation.records import (
    RunEvent,
    SessionLog,
    TrackKey,
    TurnLog,
    read_jsonl,
)


@dataclass
class RunRecords:
    """Everything a run directory holds, as written (incomplete sessions included)."""

    root: Path
    header: dict[str, Any]
    sessions: dict[TrackKey, dict[int, SessionLog]] = field(default_factory=dict)
    turns: dict[tuple[TrackKey, int], list[TurnLog]] = field(default_factory=dict)
    failures: dict[TrackKey, RunEvent] = field(default_factory=dict)

    @property
    def expected_sessions(self) -> int | None:
        """Sessions per track the experiment asked for (None when the header is gone)."""
        value = (self.header.get("experiment") or {}).get("sessions")
        return int(value) if isinstance(value, int) else None

    def _names(self, field_: str, found: Sequence[str]) -> list[str]:
        experiment = self.header.get("experiment") or {}
        named = {
            "counselor": [c["name"] for c in experiment.get("counselors", []) if "name" in c],
            "patient": list(self.header.get("patients") or experiment.get("patients") or []),
        }[field_]
        return list(dict.fromkeys([*[str(n) for n in named], *found]))

    def tracks(self) -> list[TrackKey]:
        """Every track the run holds or was asked for, in the experiment's order."""
        found = {*self.sessions, *(k for k, _ in self.turns), *self.failures}
        seeds = sorted(
            {*(k.seed for k in found), *(self.header.get("experiment") or {}).get("seeds", [])}
        )
        counselors = self._names("counselor", [k.counselor for k in found])
        patients = self._names("patient", [k.patient_id for k in found])
        return [
            TrackKey(counselor=c, seed=s, patient_id=p)
            for p in patients
            for s in seeds
            for c in counselors
        ]

    def done(self, key: TrackKey) -> int:
        """Completed sessions of a track (the unbroken run from session 1)."""
        by_no = self.sessions.get(key, {})
        n = 0
        while n + 1 in by_no:
            n += 1
        return n

    def session_numbers(self, key: TrackKey) -> list[int]:
        """Session numbers with a record or at least one turn."""
        numbers = set(self.sessions.get(key, {})) | {n for k, n in self.turns if k == key}
        return sorted(numbers)


def _key(record: SessionLog | TurnLog | RunEvent) -> TrackKey:
    return TrackKey(
        counselor=record.counselor or "", seed=record.seed or 0, patient_id=record.patient_id or ""
    )


def read_records(run_dir: Path | str) -> RunRecords:
    """Read a run directory as it is, without dropping unfinished sessions.

    Raises:
        ConfigError: the directory holds no run.
    """
    root = Path(run_dir)
    header = read_header(root)
    sessions = read_jsonl(root / "sessions.jsonl", SessionLog)
    turns = read_jsonl(root / "turns.jsonl", TurnLog)
    if not header and not sessions and not turns:
        raise ConfigError(f"{root}: no run records here; run `theramind simulate` first")
    out = RunRecords(root=root, header=header)
    for s in sessions:
        out.sessions.setdefault(_key(s), {})[s.session_no] = s
    for t in sorted(turns, key=lambda t: t.round):
        out.turns.setdefault((_key(t), t.session_no), []).append(t)
    for event in read_jsonl(root / "events.jsonl", RunEvent):
        if event.kind == "failure" and event.counselor and event.patient_id:
            out.failures[_key(event)] = event
    return out


# -- what the run holds --------------------------------------------------------------------------


def track_cell(records: RunRecords, key: TrackKey) -> Text:
    """One track's state: 'k/n' sessions, with a partial session or a failure noted."""
    done, expected = records.done(key), records.expected_sessions
    partial = len(records.turns.get((key, done + 1), []))
    complete = expected is not None and done >= expected
    colour = "green" if complete else "yellow" if done or partial else "dim"
    text = Text(f"{done}/{expected}" if expected else str(done), style=colour)
    if partial and not complete:
        text.append(f" +{partial} turns", style="yellow")
    failure = records.failures.get(key)
    if failure is not None and not complete:
        text.append(" failed", style="red")
    return text


def overview(records: RunRecords, *, width: int = WIDTH) -> list[RenderableType]:
    """Tables of patients (× seeds) by counselors with each track's completed sessions."""
    tracks = records.tracks()
    counselors = list(dict.fromkeys(k.counselor for k in tracks))
    seeds = sorted({k.seed for k in tracks})
    rows = list(dict.fromkeys((k.patient_id, k.seed) for k in tracks))
    expected = records.expected_sessions
    total = sum(records.done(k) for k in tracks)
    wanted = expected * len(tracks) if expected else None
    title = records.header.get("experiment", {}).get("name") or records.root.name

    def build(group: Sequence[str]) -> Table:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
        table.add_column("patient", no_wrap=True)
        if len(seeds) > 1:
            table.add_column("seed", justify="right")
        for c in group:
            table.add_column(c, justify="right", no_wrap=True)
        for patient, seed in rows:
            cells = [
                track_cell(records, TrackKey(counselor=c, seed=seed, patient_id=patient))
                for c in group
            ]
            table.add_row(patient, *([str(seed)] if len(seeds) > 1 else []), *cells)
        return table

    out: list[RenderableType] = []
    status = f"{total}/{wanted} sessions complete" if wanted else f"{total} sessions complete"
    if wanted and total < wanted:
        status += " (incomplete: rerun `theramind simulate` with the same config to resume)"
    out.append(Text(f"Run {title} at {records.root}: {status}", style="bold"))
    for group in fit_columns(counselors, build, width):
        out.append(build(group))
    out.append(
        Text(
            "Cells: completed sessions / sessions asked for; +k turns: a session cut short; "
            "failed: the track stopped on an error (see events.jsonl). Read one with "
            "`theramind show RUN --patient P [--session N] [--counselor C]`.",
            style="dim",
        )
    )
    return out


# -- one patient's transcript --------------------------------------------------------------------


def _pick(value: str | None, known: Sequence[str], what: str) -> list[str]:
    if value is None:
        return list(known)
    if value not in known:
        raise ConfigError(f"this run has no {what} {value!r}; it holds: {', '.join(known)}")
    return [value]


def _line(who: str, text: str, style: str, note: str = "") -> Text:
    out = Text.assemble((f"{who}: ", f"bold {style}"), text)
    if note:
        out.append(f"  ({note})", style="dim")
    return out


def turn_details(turn: TurnLog) -> Text:
    """What the counselor perceived and decided in one turn, on one line."""
    r = turn.response
    parts: list[tuple[str, str]] = []
    p = r.perception
    if p is not None:
        flags = [
            f for f, on in (("resisting", p.resistance), ("wants to end", p.wants_to_end)) if on
        ]
        perceived = f"{p.emotion} {p.intensity:.2f}, {p.attitude}"
        parts.append((f"perceived {perceived}{''.join(', ' + f for f in flags)}", ""))
    else:
        parts.append(("no perception", "dim"))
    parts.append((f"strategy {r.strategy or '—'}", ""))
    therapy = " + ".join(r.therapies) or "—"
    parts.append((f"therapy {therapy}{f' ({r.phase})' if r.phase else ''}", ""))
    parts.append((f"risk {r.risk_level}", "bold red" if r.crisis else ""))
    if r.crisis:
        parts.append(("CRISIS PROTOCOL", "bold red"))
    if r.closing:
        parts.append(("closing", ""))
    fallbacks = ", ".join(r.fallbacks)
    parts.append(
        (f"fallbacks: {fallbacks}" if fallbacks else "no fallbacks", "red" if fallbacks else "")
    )
    out = Text()
    for i, (part, style) in enumerate(parts):
        out.append(" · " if i else "", style="dim")
        out.append(part, style=style or "dim")
    return out


def _decision(s: SessionLog, following: SessionLog | None) -> Text | None:
    record = recorded(s)
    if record is None:
        return None
    applied = applied_step(record, s.therapies, following.therapies if following else None)
    text = Text("Decision at close: ", style="bold")
    if is_overridden(record.proposed, applied):
        text.append(f"proposed {step_text(record.proposed)}; applied {step_text(applied)}")
        text.append(" (overridden)", style="yellow")
    else:
        text.append(step_text(applied))
    verdict = ((s.counselor_close or {}).get("efficacy") or {}).get("verdict")
    if verdict:
        text.append(f"; efficacy {verdict}")
    if record.reason:
        text.append(f". {' '.join(record.reason.split())}", style="dim")
    return text


def _closing(s: SessionLog, following: SessionLog | None) -> list[RenderableType]:
    out: list[RenderableType] = []
    decision = _decision(s, following)
    if decision is not None:
        out.append(decision)
    q, a = s.questionnaire, s.questionnaire.alliance
    alliance = (a.goal + a.task + a.bond + a.understood) / 4
    out.append(
        Text(
            f"Patient after the session: PHQ-9 {q.phq9}, GAD-7 {q.gad7}, alliance {alliance:.2f} "
            f"(self-report); hidden PHQ-9 {s.latent_before.phq9:.1f} → "
            f"{s.latent_after.phq9:.1f}, GAD-7 {s.latent_before.gad7:.1f} → "
            f"{s.latent_after.gad7:.1f}",
            style="dim",
        )
    )
    return out


def session_view(
    records: RunRecords, key: TrackKey, session_no: int, label: str
) -> Iterator[RenderableType]:
    """Render one session: its header, the opening, each round with its details, the close."""
    s = records.sessions.get(key, {}).get(session_no)
    turns = records.turns.get((key, session_no), [])
    expected = records.expected_sessions
    of = f"/{expected}" if expected else ""
    yield Rule(f"{label} · session {session_no}{of}", align="left")
    if s is None:
        yield Text(f"Incomplete: {len(turns)} turn(s) recorded, no close.", style="yellow")
    else:
        therapies = " + ".join(s.therapies) or "—"
        yield Text(
            f"therapies {therapies} · ended: {s.end_reason.value} after {s.rounds} round(s)",
            style="dim",
        )
    opening = s.opening if s is not None else (turns[0].prompt if turns else "")
    if opening:
        yield _line("Counselor", opening, "cyan")
    for t in turns:
        yield _line(
            f"Client {t.round}",
            t.patient.text,
            "green",
            f"hidden: {t.patient.attitude}, {t.patient.kind}",
        )
        yield _line("Counselor", t.response.reply, "cyan")
        yield Padding(turn_details(t), (0, 0, 0, 4))
    if s is not None:
        yield from _closing(s, records.sessions.get(key, {}).get(session_no + 1))


def transcript(
    records: RunRecords,
    patient: str,
    *,
    session: int | None = None,
    counselor: str | None = None,
    seed: int | None = None,
) -> list[RenderableType]:
    """Render one patient's sessions (one session, counselor or seed if given).

    Raises:
        ConfigError: the run holds no such patient, counselor, seed or session.
    """
    tracks = records.tracks()
    _pick(patient, list(dict.fromkeys(k.patient_id for k in tracks)), "patient")
    counselors = _pick(counselor, list(dict.fromkeys(k.counselor for k in tracks)), "counselor")
    seeds = sorted({k.seed for k in tracks})
    chosen = _pick(None if seed is None else str(seed), [str(s) for s in seeds], "seed")
    out: list[RenderableType] = []
    for c in counselors:
        for sd in chosen:
            key = TrackKey(counselor=c, seed=int(sd), patient_id=patient)
            numbers = records.session_numbers(key)
            if session is not None:
                if session not in numbers:
                    if counselor is None:
                        continue
                    held = ", ".join(map(str, numbers)) or "none"
                    raise ConfigError(
                        f"{c} has no session {session} with {patient} (recorded: {held})"
                    )
                numbers = [session]
            label = f"{c} × {patient}" + (f" · seed {sd}" if len(seeds) > 1 else "")
            for no in numbers:
                out.extend(session_view(records, key, no, label))
    if not out:
        what = f"session {session} of {patient}" if session is not None else patient
        raise ConfigError(f"no recorded turns for {what} in {records.root}")
    return out


def show_run(
    run_dir: Path | str,
    patient: str | None = None,
    session: int | None = None,
    counselor: str | None = None,
    seed: int | None = None,
    width: int = WIDTH,
) -> list[RenderableType]:
    """Render what `theramind show` prints: the overview, or a patient's transcript.

    Raises:
        ConfigError: no run in `run_dir`, an unknown patient, counselor, seed or session, or a
            session asked for without its patient.
    """
    records = read_records(run_dir)
    if patient is None:
        if session is not None:
            raise ConfigError("--session needs --patient: which patient's session to show")
        return overview(records, width=width)
    return transcript(records, patient, session=session, counselor=counselor, seed=seed)
