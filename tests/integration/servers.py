"""Helpers for integration tests that start real servers on loopback."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout_s: float, alive: Callable[[], bool] = lambda: True) -> None:
    """Poll `url` until it answers below 500, the process dies, or time runs out."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"server exited before answering {url}")
        try:
            if httpx.get(url, timeout=2.0).status_code < 500:
                return
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer in {timeout_s}s ({last})")


@contextmanager
def chroma_server(path: Path) -> Iterator[int]:
    """Run `chroma run` on a free loopback port over `path`; yield the port."""
    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    port = free_port()
    path.mkdir(parents=True, exist_ok=True)
    with (path / "chroma.log").open("w") as log:
        server = subprocess.Popen(
            [
                chroma,
                "run",
                "--path",
                str(path / "data"),
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
                f"http://127.0.0.1:{port}/api/v2/heartbeat", 90, alive=lambda: server.poll() is None
            )
            yield port
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
