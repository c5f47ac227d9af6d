"""Storage: one SQLAlchemy engine per process, the declarative base, and unit-of-work helpers.

SQLite is the embedded default (WAL, foreign keys, busy timeout); PostgreSQL (psycopg 3) is the production
store. On SQLite a *write* unit of work begins with ``BEGIN IMMEDIATE`` so that read-then-write logic
(counters, hash chains, stock) is serialised instead of failing with ``database is locked`` at commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from cityhub.kernel import jsontext
from cityhub.kernel.settings import Settings
from cityhub.kernel.sqlite_writers import SAFETY_CHECKPOINT_PAGES, WriterLock, checkpointer, lock_file_of

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLITE_BUSY_TIMEOUT_MS = 30_000
_HOLDS_WRITER = "cityhub_holds_writer"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on both databases (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # The process checkpoints in the background (``sqlite_writers.WalCheckpointer``); a commit checkpoints
        # only if that falls far behind.
        cursor.execute(f"PRAGMA wal_autocheckpoint={SAFETY_CHECKPOINT_PAGES}")
        cursor.close()

    # SQLite has one writer. Writers queue for it on a lock instead of in SQLite's busy handler, which sleeps
    # 1-100 ms between retries: under a burst of writes the file sat idle while every waiter slept (claims on
    # one process: ~140/s with the busy handler alone). Threads of this process queue on a thread lock, the
    # processes sharing the file on a lock file beside it, so the next writer starts as soon as one commits.
    lock_file = lock_file_of(engine.url.database)
    writer = WriterLock(lock_file)
    database_file = engine.url.database if lock_file is not None else None

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("cityhub_write", False)
        if immediate:
            if not writer.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
                raise TimeoutError("another write transaction held the database too long")
            conn.info[_HOLDS_WRITER] = True
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
        except BaseException:
            _release(conn.info, writer)
            raise

    # These events come before SQLAlchemy sends COMMIT / ROLLBACK: the transaction is ended here, so the turn
    # passes on only once SQLite's own lock is free (SQLAlchemy's own call then finds nothing to end); passed
    # on earlier, the next writer's BEGIN IMMEDIATE met the busy handler after all.
    @event.listens_for(engine, "commit")
    def _on_commit(conn: Any) -> None:
        _end(conn, writer, commit=True)
        if database_file:
            checkpointer.written(database_file)

    @event.listens_for(engine, "rollback")
    def _on_rollback(conn: Any) -> None:
        _end(conn, writer, commit=False)

    @event.listens_for(engine, "reset")
    def _on_reset(_dbapi_connection: Any, record: Any, _state: Any = None) -> None:
        _release(record.info, writer)  # a connection returned to the pool mid-transaction


def _end(conn: Any, writer: WriterLock, commit: bool) -> None:
    if not conn.info.get(_HOLDS_WRITER):
        return
    try:
        driver_connection = conn.connection.dbapi_connection
        if commit:
            driver_connection.commit()
        else:
            driver_connection.rollback()
    finally:
        _release(conn.info, writer)


def _release(info: dict[str, Any], writer: WriterLock) -> None:
    if info.pop(_HOLDS_WRITER, False):
        writer.release()


def _configure_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # psycopg prepares a statement run five times on a connection; PostgreSQL then tends to switch to a
        # generic plan, blind to the parameters. For the JSONB-filtered, keyset-paged entity scans that plan
        # was 10-50x slower (0.1 s became 1-2 s per statement, measured), so plans are always made for the
        # actual values; parsing is still saved by the prepared statement.
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET plan_cache_mode = force_custom_plan")
        dbapi_connection.commit()


def make_engine(url: str, pool_size: int = 10, pre_ping: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # A pool as large as the thread pool: closing and reopening connections (and their PRAGMAs) per
        # request would dominate small requests.
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=max(pool_size, 40) if parsed.database not in (None, "", ":memory:") else 1,
            max_overflow=10,
            json_serializer=jsontext.dumps,
            json_deserializer=jsontext.loads,
        )
        _configure_sqlite(engine)
        return engine
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
        json_serializer=jsontext.dumps,
        json_deserializer=jsontext.loads,
    )
    _configure_postgresql(engine)
    return engine


@dataclass
class Database:
    """The engine and its session factories: snapshot reads, writes, and light reads for GET requests.

    Writes begin with ``BEGIN IMMEDIATE`` on SQLite. A GET request on PostgreSQL reads in autocommit, so it
    costs no BEGIN/COMMIT round trips (each statement sees the latest committed data); code that needs one
    snapshot across statements uses ``reading()`` or a write session.
    """

    engine: Engine

    def __post_init__(self) -> None:
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.engine.execution_options(cityhub_write=True), expire_on_commit=False)
        light_engine = self.engine
        if self.engine.dialect.name == "postgresql":
            light_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._light_read = sessionmaker(light_engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls.from_url(
            settings.resolved_database_url, settings.database_pool_size, settings.database_pre_ping
        )

    @classmethod
    def from_url(cls, url: str, pool_size: int = 10, pre_ping: bool = False) -> Database:
        return cls(make_engine(url, pool_size, pre_ping))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self, write: bool = False) -> Session:
        return (self._write if write else self._read)()

    def request_session(self, write: bool) -> Session:
        """The session of one HTTP request: a write transaction, or a light read (see the class docstring)."""
        return (self._write if write else self._light_read)()

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction: commit on success, roll back on any exception."""
        with self.session(write=True) as session, session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self.session() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def upsert_into(session: Session, table: Any) -> Any:
    """An INSERT with ``on_conflict_do_nothing``/``on_conflict_do_update`` for the session's database (both
    dialects spell it the same way; the portable ``insert`` has neither)."""
    return (postgresql.insert if is_postgres(session) else sqlite.insert)(table)
