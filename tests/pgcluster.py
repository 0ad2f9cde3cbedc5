"""A throwaway PostgreSQL cluster on loopback for the tests (initdb in a temporary directory).

Postgres refuses to run as root: under root the cluster runs as the `postgres` system user
(Debian's package creates it), else as `nobody`. `THERAMIND_TEST_POSTGRES_URL` names an existing
server instead (a URL whose user may create databases).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

ENV_URL = "THERAMIND_TEST_POSTGRES_URL"


def find_binary(name: str) -> str | None:
    """Return a PostgreSQL server program: on PATH, or in Debian's versioned directory."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return versions[-1] if versions else None


def unavailable() -> str | None:
    """Return why no cluster can be had here, or None."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'theramind[test]')"
    if os.environ.get(ENV_URL):
        return None
    if find_binary("initdb") is None or find_binary("pg_ctl") is None:
        return (
            "PostgreSQL is not installed (apt-get install postgresql), and "
            f"{ENV_URL} names no server"
        )
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: cannot start postgres as another user"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgCluster:
    """One running server and the databases the tests made on it."""

    def __init__(self) -> None:
        self.root: Path | None = None
        self.admin_url = os.environ.get(ENV_URL, "")
        self._user: str | None = None

    def _as_user(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", self._user, "--", *argv] if self._user else argv

    def start(self) -> PgCluster:
        """Create and start a cluster (unless an existing server was named)."""
        if self.admin_url:
            return self
        root = Path(tempfile.mkdtemp(prefix="theramind-pg-"))
        self.root = root
        if os.geteuid() == 0:
            self._user = "postgres"
            try:
                entry = pwd.getpwnam(self._user)
            except KeyError:
                self._user = "nobody"
                entry = pwd.getpwnam(self._user)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        data = root / "data"
        run = {"cwd": root, "check": True, "capture_output": True, "text": True, "timeout": 120}
        subprocess.run(
            self._as_user(
                [
                    str(find_binary("initdb")),
                    "-D",
                    str(data),
                    "-U",
                    "theramind",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            ),
            **run,  # type: ignore[call-overload]
        )
        last = ""
        for _attempt in range(3):
            port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
                "-c shared_buffers=32MB"
            )
            done = subprocess.run(
                self._as_user(
                    [
                        str(find_binary("pg_ctl")),
                        "-D",
                        str(data),
                        "-l",
                        str(root / "server.log"),
                        "-w",
                        "-t",
                        "90",
                        "-o",
                        options,
                        "start",
                    ]
                ),
                cwd=root,
                capture_output=True,
                text=True,
                timeout=120,
            )
            if done.returncode == 0:
                self.admin_url = f"postgresql://theramind@127.0.0.1:{port}/postgres"
                return self
            last = done.stdout + done.stderr
            log = root / "server.log"
            if log.exists():
                last += log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"postgres did not start: {last}")

    def url(self, database: str) -> str:
        """Return the URL of a database on this server."""
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{database}"

    def create_database(self) -> str:
        """Create an empty database; return its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by `create_database`, closing what still uses it."""
        import psycopg

        name = url.rpartition("/")[2]
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server and remove its files."""
        if self.root is None:
            return
        subprocess.run(
            self._as_user(
                [
                    str(find_binary("pg_ctl")),
                    "-D",
                    str(self.root / "data"),
                    "-m",
                    "immediate",
                    "stop",
                ]
            ),
            cwd=self.root,
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.root, ignore_errors=True)
