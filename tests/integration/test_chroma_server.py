"""The memory test suite, run against a real `chroma run` server through the HTTP client."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings
from servers import REPO, free_port, wait_http

pytestmark = pytest.mark.integration


def test_memory_suite_passes_against_a_chroma_server(tmp_path: Path) -> None:
    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    port = free_port()
    log = (tmp_path / "chroma.log").open("w")
    server = subprocess.Popen(
        [
            chroma,
            "run",
            "--path",
            str(tmp_path / "data"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
        start_new_session=True,
    )
    try:
        wait_http(
            f"http://127.0.0.1:{port}/api/v2/heartbeat", 60, alive=lambda: server.poll() is None
        )
        suite = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                str(REPO / "tests" / "unit" / "test_memory_chroma.py"),
            ],
            cwd=REPO,
            env={**os.environ, "THERAMIND_TEST_CHROMA_SERVER": f"127.0.0.1:{port}"},
            capture_output=True,
            text=True,
            timeout=900,
        )
        admin = chromadb.AdminClient(
            ChromaSettings(
                chroma_api_impl="chromadb.api.fastapi.FastAPI",
                chroma_server_host="127.0.0.1",
                chroma_server_http_port=port,
                anonymized_telemetry=False,
            )
        )
        databases = [d["name"] for d in admin.list_databases()]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
    assert suite.returncode == 0, suite.stdout[-3000:] + suite.stderr[-2000:]
    summary = suite.stdout.strip().splitlines()[-1]
    assert "passed" in summary and "skipped" not in summary and "failed" not in summary
    assert sum(name.startswith("test-") for name in databases) >= 5, databases
