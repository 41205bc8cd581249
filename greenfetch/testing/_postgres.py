"""A throwaway PostgreSQL cluster for tests and benchmarks, started the way the tests start redis-server.

``initdb`` in a temporary directory (as the unprivileged ``postgres`` user when this process is root:
the server refuses to run as root), a free loopback port, the unix socket in that same directory, and
``stop()`` ends the server by its pid and removes the directory. TCP connections need the superuser's
password (scram-sha-256), so tests can check a wrong one; the unix socket trusts, for the helper's own
``psql`` calls. The binaries are Debian's (``scripts/install-postgres``): ``/usr/lib/postgresql/N/bin``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ._moto import free_port
from ._wait import wait_until

__all__ = ["PostgresServer", "postgres_bindir"]

PASSWORD = "pg-Secret-hunter2"


def postgres_bindir() -> Path | None:
    """Where ``initdb`` and ``postgres`` are: the newest Debian version, else the PATH; None if absent."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


class PostgresServer:
    """``start()``, ``url(database)``, ``psql(sql)``, ``create_database(name)``, ``kill()``/``restart()``,
    ``stop()``. ``durable=False`` (tests) turns fsync off (a killed server loses no commit; a crashed machine might); a benchmark keeps PostgreSQL's defaults."""

    def __init__(self, *, password: str = PASSWORD, durable: bool = False, user: str = "postgres"):
        bindir = postgres_bindir()
        if bindir is None:
            raise RuntimeError(
                "PostgreSQL is not installed; scripts/install-postgres installs Debian's postgresql"
            )
        self.bindir, self.password, self.durable = bindir, password, durable
        self.superuser = user
        self.run_as: dict[str, Any] = {}
        if os.geteuid() == 0:  # the server refuses root: run it as the unprivileged postgres user
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "running as root and there is no postgres user to run the server as"
                ) from None
            self.run_as = {"user": entry.pw_uid, "group": entry.pw_gid}
        self.directory = Path(tempfile.mkdtemp(prefix="greenfetch-pg-"))
        self.data = self.directory / "data"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.directory / "postgres.log"

    # -- life cycle --------------------------------------------------------------------------------

    def start(self) -> PostgresServer:
        if not self.data.exists():
            self._initdb()
        self.port = self.port or free_port()
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.directory),
            "max_connections": "60",
            "shared_buffers": "64MB",
            "log_min_messages": "warning",
        }
        if not self.durable:
            # fsync off is safe against a killed server (the OS keeps what was written), unlike
            # synchronous_commit off: a commit must be in the WAL before the client hears of it
            settings.update(fsync="off", full_page_writes="off")
        args = [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        for name, value in settings.items():
            args += ["-c", f"{name}={value}"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **self.run_as,
            )
        wait_until(self._ready, 30, f"PostgreSQL on port {self.port} to accept connections (log: {self.log})")
        return self

    def _initdb(self) -> None:
        pwfile = self.directory / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.run_as:
            for path in (self.directory, pwfile):
                os.chown(path, self.run_as["user"], self.run_as["group"])
        subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                self.superuser,
                "--pwfile",
                str(pwfile),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
            **self.run_as,
        )
        pwfile.unlink()

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(
                f"PostgreSQL exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}"
            )
        probe = subprocess.run(
            [str(self.bindir / "pg_isready"), "-q", "-h", str(self.directory), "-p", str(self.port)],
            capture_output=True,
        )
        return probe.returncode == 0

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill: the next ``start()`` recovers from the WAL."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        """An immediate shutdown (SIGQUIT: no checkpoint, the directory goes anyway), then the directory goes."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- using it ----------------------------------------------------------------------------------

    def url(self, database: str = "postgres", *, password: str | None = None, user: str | None = None) -> str:
        """``postgresql://USER:PASSWORD@127.0.0.1:PORT/DATABASE`` (``password=""``: none in the URL)."""
        secret = self.password if password is None else password
        auth = quote(user or self.superuser, safe="") + (f":{quote(secret, safe='')}" if secret else "")
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL over the unix socket as the superuser; the output, unaligned, tuples only."""
        out = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.directory),
                "-p",
                str(self.port),
                "-U",
                self.superuser,
                "-d",
                database,
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PGPASSWORD": ""},
        )
        if out.returncode != 0:
            raise AssertionError(f"psql failed: {out.stderr.strip()}")
        return out.stdout.strip()

    def create_database(self, name: str) -> str:
        """A new, empty database; its URL."""
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)
