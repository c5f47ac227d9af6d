"""Fixtures: every DB-touching test runs on SQLite and on PostgreSQL.

PostgreSQL comes from CITYHUB_TEST_POSTGRES_URL (default: the local server, user postgres). When it is
unreachable the PostgreSQL variants are skipped on a developer machine but *fail* in CI
(CI=true or CITYHUB_TEST_REQUIRE_POSTGRES=1), so a broken service never passes silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cityhub.domains import load_models
from cityhub.domains.identity.service.principals import principal_cache
from cityhub.kernel import ratelimit
from cityhub.kernel.db import Base, Database
from cityhub.kernel.settings import Settings, clear_settings_cache
from cityhub.migrations import upgrade_engine

POSTGRES_ADMIN_URL = os.environ.get(
    "CITYHUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = (
    os.environ.get("CI", "").lower() == "true" or os.environ.get("CITYHUB_TEST_REQUIRE_POSTGRES") == "1"
)
BACKENDS = ["sqlite", "postgresql"]

# In CI, property and fuzz tests draw the same examples every run, so a red build always reproduces;
# developer runs keep exploring new examples (and Hypothesis keeps the failing ones in .hypothesis/).
hypothesis.settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI", "").lower() == "true":
    hypothesis.settings.load_profile("ci")


def _worker_suffix() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _postgres_database_name() -> str:
    # The process id keeps concurrent runs on one server (several shells, CI) out of each other's way.
    return f"cityhub_test_{_worker_suffix()}_{os.getpid()}"


def _admin(statement: str) -> None:
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(statement))
    finally:
        admin.dispose()


def _create_postgres_database() -> str:
    """A fresh database for this test process; its URL."""
    name = _postgres_database_name()
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{name}"')
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def migrated_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str | Exception]]:
    """Each backend's URL after running every migration once per test process (or why it is missing)."""
    load_models()
    urls: dict[str, str | Exception] = {}
    sqlite_file = tmp_path_factory.mktemp("sqlite") / "cityhub-test.db"
    urls["sqlite"] = f"sqlite:///{sqlite_file}"
    try:
        urls["postgresql"] = _create_postgres_database()
    except Exception as exc:
        urls["postgresql"] = exc
    for url in urls.values():
        if isinstance(url, str):
            database = Database.from_url(url)
            upgrade_engine(database.engine)
            database.dispose()
    yield urls
    if isinstance(urls["postgresql"], str):
        _admin(f'DROP DATABASE IF EXISTS "{_postgres_database_name()}" WITH (FORCE)')


def _clear_tables(database: Database) -> None:
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    with database.engine.begin() as connection:
        if database.dialect == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(params=BACKENDS)
def db_backend(request: pytest.FixtureRequest, migrated_urls: dict[str, str | Exception]) -> str:
    url = migrated_urls[request.param]
    if isinstance(url, Exception):
        message = f"PostgreSQL unreachable at {POSTGRES_ADMIN_URL}: {url}"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    return str(request.param)


@pytest.fixture
def database(db_backend: str, migrated_urls: dict[str, str | Exception]) -> Iterator[Database]:
    """An empty, migrated database on the parametrised backend."""
    database = Database.from_url(str(migrated_urls[db_backend]), pool_size=5)
    _clear_tables(database)
    yield database
    database.dispose()


@pytest.fixture
def settings(tmp_path: Path, database: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("CITYHUB_ENV", "test")
    monkeypatch.setenv("CITYHUB_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CITYHUB_DATABASE_URL", database.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CITYHUB_JOBS__EMBEDDED_WORKER", "false")
    clear_settings_cache()
    settings = Settings()
    ratelimit.reset(settings.rate_limits.storage_uri)
    principal_cache.clear()  # ids are reused after the tables are emptied
    yield settings
    clear_settings_cache()


@pytest.fixture
def app(settings: Settings, database: Database):  # type: ignore[no-untyped-def]
    from cityhub.web import create_app

    return create_app(settings, database)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client
