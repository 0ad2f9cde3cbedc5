"""Soak: many patients and sessions against a faulty server, two processes, SIGKILLs.

A stub server answers a quarter of all calls with one of the fault shapes of
`theramind.testing.shapes`. Two worker processes share one store (each serves its own
patients) and log every turn the API acknowledged; the parent kills a worker with SIGKILL at
random moments and starts it again. At the end the store is checked against the logs:

- exceptions that escaped the API (any exception from `start_session`, `respond`, `end`);
- acknowledged turns lost (not stored, or stored with another reply) or duplicated (a turn
  number stored twice, or turns not numbered 1..n);
- cross-patient items (a turn or a recalled memory carrying another patient's marker).

    PYTHONPATH=src python -m benchmarks.soak --patients 50 --sessions 10 --kills 20 --kill-every 12
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from theramind import TheraMind, load_config
from theramind.config import Settings
from theramind.memory import HashingEmbedder, build_memory
from theramind.services import build_services
from theramind.testing.shapes import SHAPES
from theramind.testing.stub_server import StubConfig, StubServer

LINES = [
    "I haven't been sleeping well since the move.",
    "My sister says I'm overreacting, but she doesn't get it.",
    "No, that won't work, I've already tried it.",
    "Maybe I could try writing things down before bed.",
    "I get so angry at myself when I mess up at work.",
    "Work is piling up and I keep putting it off.",
]
CLOSING = "Thanks, that's all for today, bye."
WORKERS = 2


def marker(patient_id: str) -> str:
    """The token every message of a patient carries, to spot it anywhere else."""
    return f"[{patient_id}]"


def settings_for(root: Path, base_url: str, worker: int) -> Settings:
    """One store for every worker; each worker slot its own vector memory directory."""
    spec = {
        "backend": "openai",
        "base_url": base_url,
        "model": "stub",
        "timeout_s": 0.4,
        "retries": 1,
        "backoff_s": 0.0,
        "structured_output": "json_schema",
    }
    return load_config(
        None,
        models={"counselor": spec, "patient": "scripted", "judge": "scripted"},
        storage={"home": str(root / "home")},
        memory={"backend": "chroma", "path": str(root / f"chroma-{worker}")},
        limits={"structured_retries": 1, "max_rounds": 6},
    )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


class Log:
    """An append-only JSON-lines file, flushed and synced per line (it must survive SIGKILL)."""

    def __init__(self, path: Path) -> None:
        self._fh = path.open("a", encoding="utf-8")

    def write(self, **entry: Any) -> None:
        """Append one entry and make it durable before returning."""
        self._fh.write(json.dumps(entry) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())


def run_worker(root: Path, base_url: str, worker: int, patients: list[str], sessions: int) -> int:
    """Serve `patients` until each has `sessions` closed sessions; log acks and escapes."""
    settings = settings_for(root, base_url, worker)
    memory = build_memory(settings, embedder=HashingEmbedder())
    app = TheraMind(build_services(settings, memory=memory))
    acks = Log(root / f"acks-{worker}.jsonl")
    escapes = Log(root / f"escapes-{worker}.jsonl")
    rng = random.Random(worker * 1000 + os.getpid())
    store = app.services.store

    def escaped(call: str, pid: str, exc: BaseException) -> None:
        escapes.write(call=call, patient=pid, type=type(exc).__name__, error=str(exc)[:300])

    pending = list(patients)
    while pending:
        pid = pending.pop(0)
        if not store.has_patient(pid):
            app.register_patient({"patient_id": pid, "presenting_problem": f"low mood {pid}"})
        closed = sum(1 for o in store.outcomes(pid))
        if closed >= sessions:
            continue
        try:
            session = app.start_session(pid)
        except Exception as exc:  # counted: nothing may escape the API
            escaped("start_session", pid, exc)
            pending.append(pid)
            continue
        done = len(session.turns)
        want = rng.randint(2, 4)
        while session.status == "open":
            line = CLOSING if done >= want else rng.choice(LINES)
            text = f"{line} {marker(pid)}"
            try:
                result = session.respond(text)
            except Exception as exc:  # counted
                escaped("respond", pid, exc)
                break
            done += 1
            acks.write(
                patient=pid,
                session=session.session_no,
                turn=result.record.turn,
                reply=_digest(result.reply),
                fallbacks=len(result.record.fallbacks),
            )
        if session.status == "closing":
            try:
                session.end()
            except Exception as exc:  # counted
                escaped("end", pid, exc)
        pending.append(pid)
    app.close()
    return 0


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:  # a line cut by SIGKILL
            continue
    return rows


def verify(root: Path, base_url: str, patients: list[str]) -> dict[str, Any]:
    """Check the store against the acknowledgement logs."""
    settings = settings_for(root, base_url, 0)
    app = TheraMind(build_services(settings, use_memory=False))
    store = app.services.store
    acks = [a for w in range(WORKERS) for a in _read_jsonl(root / f"acks-{w}.jsonl")]
    escapes = [e for w in range(WORKERS) for e in _read_jsonl(root / f"escapes-{w}.jsonl")]
    stored: dict[tuple[str, int, int], list[str]] = {}
    misnumbered = cross = turns_stored = closed = 0
    for pid in patients:
        if not store.has_patient(pid):
            continue
        closed += len(store.outcomes(pid))
        for no in range(1, store.last_session_no(pid) + 1):
            turns = store.turns(pid, no)
            turns_stored += len(turns)
            numbers = [t.turn for t in turns]
            misnumbered += int(numbers != list(range(1, len(numbers) + 1)))
            for t in turns:
                stored.setdefault((pid, no, t.turn), []).append(_digest(t.reply))
                if marker(pid) not in t.patient_text:
                    cross += 1
                for item in t.recalled:
                    foreign = [p for p in patients if p != pid and marker(p) in item.text]
                    cross += int(item.patient_id != pid or bool(foreign))
    lost = duplicated = 0
    seen: Counter[tuple[str, int, int]] = Counter()
    for a in acks:
        key = (a["patient"], a["session"], a["turn"])
        seen[key] += 1
        replies = stored.get(key)
        if not replies or a["reply"] not in replies:
            lost += 1
    duplicated = sum(1 for n in seen.values() if n > 1) + sum(
        1 for r in stored.values() if len(r) > 1
    )
    app.close()
    return {
        "acknowledged_turns": len(acks),
        "stored_turns": turns_stored,
        "closed_sessions": closed,
        "exceptions_escaped": len(escapes),
        "escape_types": dict(Counter(e["type"] for e in escapes)),
        "acknowledged_lost": lost,
        "duplicated": duplicated,
        "sessions_misnumbered": misnumbered,
        "cross_patient_items": cross,
    }


def _spawn(root: Path, base_url: str, worker: int, patients: list[str], sessions: int) -> Any:
    args = [sys.executable, "-m", "benchmarks.soak", "--worker", str(worker), "--root", str(root)]
    args += ["--base-url", base_url, "--sessions", str(sessions), "--ids", ",".join(patients)]
    log = (root / f"worker-{worker}.log").open("ab")
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())


def _acknowledged(root: Path) -> bool:
    """Whether any worker has acknowledged a turn yet (a kill before that tests only start-up)."""
    return any(p.stat().st_size > 0 for p in root.glob("acks-*.jsonl"))


def run(
    patients: int,
    sessions: int,
    kills: int,
    minutes: float,
    root: Path,
    *,
    kill_gap_s: float | None = None,
) -> dict[str, Any]:
    """Run the soak; return the counts and the scale reached.

    SIGKILLs come about every `kill_gap_s` seconds (default: spread over 80 % of the time), the
    first once a turn has been acknowledged, so a run that finishes quickly is still killed.
    """
    root.mkdir(parents=True, exist_ok=True)
    ids = [f"soak-{i:03d}" for i in range(patients)]
    shares = [ids[w::WORKERS] for w in range(WORKERS)]
    config = StubConfig(
        fault_rate=0.25, faults=tuple(SHAPES), timeout_sleep_s=0.6, trickle_s=1.0, seed=7
    )
    rng = random.Random(20)
    started = time.monotonic()
    deadline = started + minutes * 60
    killed = crashes = 0
    with StubServer(config) as server:
        procs = {w: _spawn(root, server.base_url, w, shares[w], sessions) for w in range(WORKERS)}
        gap = kill_gap_s or minutes * 60 * 0.8 / max(1, kills)
        next_kill = started + rng.uniform(0.5, 1.5) * gap
        while time.monotonic() < deadline:
            time.sleep(0.2)
            for w, p in procs.items():
                if p.poll() not in (None, 0) and crashes < 20:
                    crashes += 1  # a worker died on its own: something escaped
                    procs[w] = _spawn(root, server.base_url, w, shares[w], sessions)
            running = [w for w, p in procs.items() if p.poll() is None]
            if not running:
                break
            if killed < kills and time.monotonic() >= next_kill and _acknowledged(root):
                w = rng.choice(running)
                procs[w].send_signal(signal.SIGKILL)
                procs[w].wait()
                killed += 1
                procs[w] = _spawn(root, server.base_url, w, shares[w], sessions)
                next_kill = time.monotonic() + rng.uniform(0.5, 1.5) * gap
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
        faults = sum(r.fault is not None for r in server.requests)
        requests = len(server.requests)
        shapes_seen = len({r.fault for r in server.requests if r.fault})
        report = verify(root, server.base_url, ids)
    report.update(
        patients=patients,
        sessions_per_patient=sessions,
        sigkills=killed,
        worker_crashes=crashes,
        requests=requests,
        faulted_requests=faults,
        fault_shapes_seen=shapes_seen,
        wall_s=round(time.monotonic() - started, 1),
    )
    return report


def main(argv: list[str] | None = None) -> None:
    """Parse arguments: run the soak, or (internally) one worker."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=50)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=9.0)
    parser.add_argument("--kill-every", type=float, default=None, help="seconds between kills")
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--ids", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        ids = [i for i in args.ids.split(",") if i]
        sys.exit(run_worker(args.root, args.base_url, args.worker, ids, args.sessions))
    root = args.root or Path(f"/tmp/theramind-soak-{os.getpid()}")
    report = run(
        args.patients, args.sessions, args.kills, args.minutes, root, kill_gap_s=args.kill_every
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
