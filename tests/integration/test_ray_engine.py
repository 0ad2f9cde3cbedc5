"""Experiments on a two-node Ray cluster on loopback: a killed worker costs no session."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the `benchmarks` package

from benchmarks.endpoint import plausible_reply

from theramind.simulation import ExperimentConfig, ExperimentRunner, strip_volatile
from theramind.simulation.records import RunEvent, read_jsonl
from theramind.testing.stub_server import StubConfig, StubServer

pytest.importorskip("ray")
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PATIENTS = [
    "anxiety-priya",
    "addiction-sam",
    "family-aisha",
    "youth-zoe",
    "stress-hana",
    "love-dev",
    "social-omar",
    "emotion-lena",
]
SIMULATE = (sys.executable, "-m", "theramind.cli", "simulate")
PROXIES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise RuntimeError(f"the Ray head did not listen on {port} within {limit_s}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End a `ray start --block` and every process of its group (ours alone)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=3)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@dataclass(frozen=True)
class Cluster:
    """A running Ray cluster: its address and the environment its clients need."""

    address: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A head and a second node, two CPUs each, on loopback."""
    ray_bin = str(Path(sys.executable).with_name("ray"))
    temp = tempfile.mkdtemp(prefix="tmray", dir="/tmp")  # unix socket paths must stay short
    env = {k: v for k, v in os.environ.items() if k not in PROXIES}  # gRPC: no dead proxy
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        RAY_USAGE_STATS_ENABLED="0",
        # Token authentication with this test's own token, whatever ~/.ray holds.
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(32),
    )
    common = [
        "--block",
        "--node-ip-address=127.0.0.1",
        "--num-cpus=2",
        "--object-store-memory=80000000",
        "--disable-usage-stats",
    ]
    port = _free_port()
    log = open(Path(temp) / "start.log", "wb")  # noqa: SIM115  (closed at tear-down)
    head = subprocess.Popen(
        [
            ray_bin,
            "start",
            "--head",
            f"--port={port}",
            f"--ray-client-server-port={_free_port()}",
            "--include-dashboard=false",
            f"--temp-dir={temp}",
            *common,
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    procs = [head]
    try:
        _wait_port(port, head)
        procs.append(
            subprocess.Popen(
                [ray_bin, "start", f"--address=127.0.0.1:{port}", *common],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        yield Cluster(f"127.0.0.1:{port}", env)
    finally:
        for proc in reversed(procs):
            _stop(proc)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def _experiment(out: Path, urls: list[str]) -> ExperimentConfig:
    model = {
        "backend": "openai",
        "base_url": urls,
        "model": "stub",
        "structured_output": "json_schema",
        "max_tokens_field": "max_tokens",
        "timeout_s": 30,
        "retries": 2,
        "backoff_s": 0.05,
    }
    return ExperimentConfig.model_validate(
        {
            "name": "ray-smoke",
            "counselors": ["theramind"],
            "patients": PATIENTS,
            "sessions": 2,
            "seeds": [0],
            "models": {"counselor": model, "judge": model, "patient": "scripted"},
            "patient": {"kind": "scripted"},
            "memory": {"backend": "chroma", "embedding_model": "hashing", "min_similarity": 0.1},
            "concurrency": 8,
            "output_dir": str(out),
        }
    )


def _records(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for name in ("turns", "sessions"):
        lines = (run_dir / f"{name}.jsonl").read_text().splitlines()
        rows = [strip_volatile(json.loads(line)) for line in lines]
        out[name] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))
    return out


def _courses_running() -> list[int]:
    """The pids of Ray workers running a course now (Ray names them after the task)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(b"ray::run_course"):
                pids.append(int(entry.name))
    return pids


def _kill_one_mid_run(run_dir: Path, killed: list[int], stop: threading.Event) -> None:
    """Once the first session is on record, SIGKILL one worker that is running a course."""
    sessions = run_dir / "sessions.jsonl"
    while not stop.is_set():
        if sessions.is_file() and sessions.read_text().strip():
            pids = _courses_running()
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
                return
        time.sleep(0.05)


def test_a_killed_worker_costs_no_session_and_records_match_the_local_engine(
    cluster: Cluster, tmp_path: Path
) -> None:
    stub = StubConfig(latency_s=0.02, reply=plausible_reply)
    with StubServer(stub) as one, StubServer(stub) as two:
        urls = [one.base_url, two.base_url]
        local = ExperimentRunner(_experiment(tmp_path / "local", urls)).run()
        assert local.sessions_done == 16 and local.tracks_failed == 0

        ray_dir = tmp_path / "ray"
        spec = tmp_path / "ray-smoke.yaml"
        spec.write_text(json.dumps(_experiment(ray_dir, urls).model_dump(mode="json")))
        killed: list[int] = []
        stop = threading.Event()
        killer = threading.Thread(target=_kill_one_mid_run, args=(ray_dir, killed, stop))
        killer.start()
        try:
            cli = subprocess.run(
                [*SIMULATE, str(spec), "--engine", "ray", "--address", cluster.address],
                env={**cluster.env, "COLUMNS": "200"},
                capture_output=True,
                text=True,
                timeout=600,
            )
        finally:
            stop.set()
            killer.join()
        assert cli.returncode == 0, cli.stdout[-3000:] + cli.stderr[-3000:]
        assert one.requests and two.requests, "both endpoints served the courses"

    assert killed, "no worker was running a course once the first session was recorded"
    assert "16 sessions run, 0 kept from before, 0 patient(s) failed" in cli.stdout
    assert "theramind" in cli.stdout and "Records:" in cli.stdout  # the summary table
    events = read_jsonl(ray_dir / "events.jsonl", RunEvent)
    assert [e for e in events if e.kind == "retry"], "Ray did not restart the killed course"
    finish = [e for e in events if e.kind == "finish"][-1].detail
    assert finish["engine"] == "ray" and finish["sessions_done"] == 16
    assert finish["sessions_run"] == 16 and finish["tracks_failed"] == 0
    sessions = [json.loads(line) for line in (ray_dir / "sessions.jsonl").read_text().splitlines()]
    per_session = Counter((s["patient_id"], s["session_no"]) for s in sessions)
    assert set(per_session.values()) == {1} and len(per_session) == 16
    turns = [json.loads(line) for line in (ray_dir / "turns.jsonl").read_text().splitlines()]
    per_round = Counter((t["patient_id"], t["session_no"], t["round"]) for t in turns)
    assert set(per_round.values()) == {1}, "a round was recorded twice"
    assert finish["turns_run"] == len(turns) == local.turns_run
    assert _records(ray_dir) == _records(tmp_path / "local")
    # The run counts each endpoint's calls.
    assert set(finish["endpoints"]) == set(urls)
    assert all(u["calls"] > 0 for u in finish["endpoints"].values())
