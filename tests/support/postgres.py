"""A throwaway PostgreSQL server for tests: initdb into a temp dir, serve on 127.0.0.1, remove.

The server runs as the `postgres` OS user when the tests run as root (postgres refuses to run as
root), listens on a free loopback port with its unix socket inside its own directory, trusts
every loopback connection, and is tuned for speed rather than durability (fsync off: it is
thrown away at the end, and the crash tests kill the manager, never the database). Stopping is
a fast shutdown, then SIGKILL; the directory is removed whatever happened.

When no PostgreSQL is installed this raises `PostgresUnavailableError`: the issue requires the
PostgreSQL tests to run, so the fixture built on it fails rather than skips.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from support.manager import free_port

OS_USER = "postgres"
SUPERUSER = "postgres"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
# Settings for a disposable server: no durability work, nothing to tune for.
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
}


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL server binaries on this machine (or they cannot run)."""


def find_bindir() -> Path:
    """The directory holding `initdb` and `postgres`: `pg_config --bindir`, else Debian's."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        found = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if found:
            candidates.append(Path(found))
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    versions.sort(key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0)
    candidates += [Path(p) for p in reversed(versions)]
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "postgres").is_file():
            return bindir
    raise PostgresUnavailableError(
        "PostgreSQL server binaries (initdb, postgres) not found via `pg_config --bindir` or "
        "/usr/lib/postgresql/*/bin: install Debian's `postgresql` package (`make test` does)"
    )


def _os_user() -> pwd.struct_passwd | None:
    """The account to run the server as: `postgres` when we are root (created if missing)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(OS_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", OS_USER], check=True)
        return pwd.getpwnam(OS_USER)


def _run_as(
    user: pwd.struct_passwd | None, command: list[str], cwd: Path, log: Path
) -> subprocess.Popen[bytes]:
    """Start `command` as `user` (with its own group only), output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            user=None if user is None else user.pw_uid,
            group=None if user is None else user.pw_gid,
            extra_groups=None if user is None else [],
        )


@dataclass
class PostgresServer:
    """A running server; `url(db)` names a database on it, reachable by any local process."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes]
    log: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def admin_connection(self) -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit connection to the `postgres` database, as the superuser."""
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True
        )

    def create_database(self, name: str | None = None) -> str:
        """A new empty database (named `name`, or `onm_<random>`); returns its name."""
        name = name or f"onm_{secrets.token_hex(6)}"
        with self.admin_connection() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever still uses it (a killed manager's pool)."""
        with self.admin_connection() as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _wait_ready(server: PostgresServer) -> None:
    """Until the server accepts a connection; its log in the error if it dies or hangs."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if server.process.poll() is not None:
            raise PostgresUnavailableError(
                f"postgres exited with {server.process.returncode}: {server.log.read_text()}"
            )
        try:
            with server.admin_connection():
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise PostgresUnavailableError(
                    f"postgres did not accept connections within {START_TIMEOUT} s: "
                    f"{server.log.read_text()}"
                ) from None
            time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGINT: disconnect clients, checkpoint), SIGKILL if it hangs."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a throwaway server with an empty `onm` database; stop it and remove it on exit."""
    bindir = find_bindir()
    user = _os_user()
    directory = Path(tempfile.mkdtemp(prefix="onm-pg-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        if user is not None:
            os.chown(directory, user.pw_uid, user.pw_gid)
        data = directory / "data"
        log = directory / "postgres.log"
        initdb = [str(bindir / "initdb"), "--pgdata", str(data), "--username", SUPERUSER]
        initdb += ["--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"]
        if _run_as(user, initdb, directory, log).wait() != 0:
            raise PostgresUnavailableError(f"initdb failed: {log.read_text()}")
        port = free_port()
        command = [str(bindir / "postgres"), "-D", str(data), "-p", str(port)]
        command += [f"--{key}={value}" for key, value in SETTINGS.items()]
        command.append(f"--unix_socket_directories={directory}")
        process = _run_as(user, command, directory, log)
        server = PostgresServer(port, directory, process, log)
        _wait_ready(server)
        server.create_database("onm")
        yield server
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(directory, ignore_errors=True)
