"""Fixtures every test tier may use: the databases the manager's store runs on.

`postgres_url` starts one throwaway PostgreSQL server for the whole session (only when a test
asks for it); `database_url` gives each test a fresh, empty database on each backend in turn.
PostgreSQL tests fail, never skip, when PostgreSQL is missing: issue #3 requires them to run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.postgres import PostgresServer, PostgresUnavailableError, postgres_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    missing: PostgresUnavailableError | None = None
    try:
        with postgres_server() as server:
            yield server
    except PostgresUnavailableError as error:
        missing = error
    if missing is not None:
        pytest.fail(f"PostgreSQL is required for these tests: {missing}", pytrace=False)


@pytest.fixture(scope="session")
def postgres_url(postgres: PostgresServer) -> str:
    """`postgresql://postgres@127.0.0.1:PORT/onm` on the session's server."""
    return postgres.url("onm")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh empty database for this test: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = server.create_database()
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)
