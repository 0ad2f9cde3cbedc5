"""Running `theramind` in a subprocess, the way a user does, with this checkout's source."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

SRC = Path(__file__).resolve().parents[2] / "src"
DEAD = "http://127.0.0.1:9/v1"
SCRIPTED = {"counselor": "scripted", "patient": "scripted", "judge": "scripted"}
CLEAN = (
    "THERAMIND_BASE_URL",
    "THERAMIND_MODEL",
    "THERAMIND_COUNSELOR_BASE_URL",
    "THERAMIND_PATIENT_BASE_URL",
    "THERAMIND_JUDGE_BASE_URL",
)


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An offline environment with storage under `tmp_path` and no model server set."""
    env = {k: v for k, v in os.environ.items() if k not in CLEAN}
    path = [str(SRC), env.get("PYTHONPATH", "")]
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in path if p),
        THERAMIND_HOME=str(tmp_path / "home"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        ANONYMIZED_TELEMETRY="False",
        PYTHONUNBUFFERED="1",
        COLUMNS="200",
        **extra,
    )
    return env


def _sigint_default() -> None:
    # A shell starts background jobs with SIGINT ignored, and Python then never raises
    # KeyboardInterrupt; give the child the default disposition, as a terminal would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def theramind(
    args: list[str],
    env: Mapping[str, str],
    *,
    cwd: Path,
    stdin: str = "",
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m theramind.cli ARGS` to the end; stdout and stderr together."""
    return subprocess.run(
        [sys.executable, "-m", "theramind.cli", *args],
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(env),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def spawn(args: list[str], env: Mapping[str, str], *, cwd: Path) -> subprocess.Popen[str]:
    """Start `python -m theramind.cli ARGS` (stdin a pipe) for a test to signal."""
    return subprocess.Popen(
        [sys.executable, "-m", "theramind.cli", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(env),
        cwd=cwd,
        preexec_fn=_sigint_default,
    )


def experiment(tmp_path: Path, name: str = "exp", **fields: Any) -> Path:
    """Write a small experiment (one counselor, one patient, scripted patient) to a YAML file."""
    data: dict[str, Any] = {
        "name": name,
        "counselors": ["theramind"],
        "patients": ["anxiety-priya"],
        "sessions": 1,
        "round_cap": 3,
        "patient": {"kind": "scripted"},
        "memory": {"backend": "inmemory", "embedding_model": "hashing"},
        "concurrency": 2,
        **fields,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class Output:
    """Collects a child's output on a thread, so a test can wait for a line and then signal."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        import threading

        self.proc = proc
        self.text = ""
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for chunk in iter(lambda: self.proc.stdout.read(1), ""):  # type: ignore[union-attr]
            with self._lock:
                self.text += chunk

    def wait_for(self, needle: str, count: int = 1, timeout: float = 120) -> bool:
        """Wait until `needle` appears `count` times (False on timeout or exit)."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self.text.count(needle) >= count:
                    return True
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        return False

    def finish(self, timeout: float = 120) -> str:
        """Wait for the child to exit; return everything it wrote."""
        self.proc.wait(timeout=timeout)
        self._thread.join(timeout=5)
        return self.text
