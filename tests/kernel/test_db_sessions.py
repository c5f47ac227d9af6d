"""Connection set-up of the two supported databases."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import text

from cityhub.kernel.db import Database
from cityhub.kernel.sqlite_writers import SAFETY_CHECKPOINT_PAGES, WriterLock


def test_connections_are_set_up_for_their_database(database: Database) -> None:
    with database.engine.connect() as connection:
        if database.dialect == "postgresql":
            # generic plans of prepared statements were 10-50x slower for the keyset-paged entity scans
            assert connection.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
        else:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_writers_of_one_sqlite_file_queue_across_processes(tmp_path: Path) -> None:
    """Two processes' write turns exclude each other (two locks on one file behave as two processes: flock
    is held per open file), a waiter is told no after its timeout, and the turn passes on release."""
    lock_file = tmp_path / "city.db-writer.lock"
    first, second = WriterLock(lock_file), WriterLock(lock_file)
    assert first.acquire(timeout=1)
    started = time.monotonic()
    assert not second.acquire(timeout=0.05)
    assert time.monotonic() - started >= 0.05
    first.release()
    assert second.acquire(timeout=1)
    second.release()


def test_a_dead_writer_process_leaves_the_turn_free(tmp_path: Path) -> None:
    """The kernel drops a killed holder's lock: no stale lock file blocks the next writer."""
    lock_file = tmp_path / "city.db-writer.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from cityhub.kernel.sqlite_writers import SAFETY_CHECKPOINT_PAGES, WriterLock; "
            "WriterLock(Path(sys.argv[1])).acquire(timeout=5); print('held', flush=True); time.sleep(60)",
            str(lock_file),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        waiter = WriterLock(lock_file)
        assert not waiter.acquire(timeout=0.05)
        holder.kill()
        holder.wait(timeout=10)
        assert waiter.acquire(timeout=5)
        waiter.release()
    finally:
        holder.kill()


def test_sqlite_write_units_of_two_engines_on_one_file_take_turns(tmp_path: Path) -> None:
    """A second process's write waits for the first one's commit and then goes ahead (no busy-handler sleep,
    no "database is locked")."""
    url = f"sqlite:///{tmp_path / 'city.db'}"
    one, other = Database.from_url(url), Database.from_url(url)
    with one.unit_of_work() as session:
        session.execute(text("CREATE TABLE counter (n INTEGER)"))
        session.execute(text("INSERT INTO counter VALUES (0)"))
    order: list[str] = []

    def increment_later() -> None:
        with other.unit_of_work() as session:
            session.execute(text("UPDATE counter SET n = n + 1"))  # the transaction begins here
            order.append("other wrote")

    with one.unit_of_work() as session:
        session.execute(text("UPDATE counter SET n = n + 1"))
        waiting = threading.Thread(target=increment_later)
        waiting.start()
        time.sleep(0.2)
        order.append("one committing")
    waiting.join(timeout=10)
    assert order == ["one committing", "other wrote"]
    with one.unit_of_work() as session:
        assert session.execute(text("SELECT n FROM counter")).scalar() == 2
    one.dispose()
    other.dispose()


def test_without_a_lock_file_writers_still_take_turns_in_the_process(tmp_path: Path) -> None:
    """A directory where the lock file cannot be made leaves the processes to SQLite's busy handler; the
    threads of the process still queue."""
    lock = WriterLock(tmp_path / "missing-directory" / "city.db-writer.lock")
    assert lock.acquire(timeout=1)
    assert not lock.acquire(timeout=0.05)
    lock.release()
    assert lock.acquire(timeout=1)
    lock.release()


def test_commits_leave_the_wal_to_the_background_checkpointer(tmp_path: Path) -> None:
    """Commits do not copy the WAL back into the database file themselves (it keeps its first pages); within a
    few seconds the process's checkpointer has."""
    path = tmp_path / "city.db"
    database = Database.from_url(f"sqlite:///{path}")
    with database.unit_of_work() as session:
        assert session.execute(text("PRAGMA wal_autocheckpoint")).scalar() == SAFETY_CHECKPOINT_PAGES
        session.execute(text("CREATE TABLE reading (n INTEGER, note TEXT)"))
    for batch in range(20):
        with database.unit_of_work() as session:
            session.execute(
                text("INSERT INTO reading VALUES (:n, :note)"),
                [{"n": batch * 500 + n, "note": "x" * 200} for n in range(500)],
            )
    written = 20 * 500 * 200
    deadline = time.monotonic() + 10
    while path.stat().st_size < written and time.monotonic() < deadline:
        time.sleep(0.1)
    assert path.stat().st_size >= written
    database.dispose()
