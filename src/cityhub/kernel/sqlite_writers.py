"""SQLite's one writer, shared well by the threads and processes of the app.

SQLite lets one transaction write at a time. Left to itself, a writer that finds the file busy sleeps 1-100 ms
between tries (the busy handler), so under a burst the file sat idle while every waiter slept; and each
commit that crosses the WAL's size limit copies the WAL back into the database and syncs it (a checkpoint)
while the next writer waits. Here:

- ``WriterLock``: the writers queue for their turn, the threads of a process on a thread lock, the processes
  on an exclusive ``flock`` of a lock file beside the database, so the next writer starts as soon as one
  commits;
- ``WalCheckpointer``: the WAL of every file this process wrote is checkpointed by a background thread
  (``PRAGMA wal_checkpoint(PASSIVE)``, which neither waits for nor blocks readers and writers), not by the
  commits; a commit checkpoints only when the WAL outgrows ``SAFETY_CHECKPOINT_PAGES``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

log = logging.getLogger("cityhub.db")

MAX_LOCK_POLL_SECONDS = 0.0005
CHECKPOINT_SECONDS = 1.0
# About 40 MB of 4 KiB pages: far more than a second of writes at bulk speed, so commits leave checkpoints to
# the background unless it stops (SQLite's default is 1,000 pages)
SAFETY_CHECKPOINT_PAGES = 10_000


def lock_file_of(database: str | None) -> Path | None:
    """Where the processes sharing the SQLite file ``database`` queue for its write lock (None: an in-memory
    database)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database + "-writer.lock")


class WriterLock:
    """One SQLite file's write turn: a thread lock for this process's threads, then an exclusive ``flock`` on
    a lock file for the processes (the kernel frees it if the holder dies). The file is opened for each turn
    and closed with it: no lock outlives its turn, no descriptor its engine. A file that cannot be opened (a
    read-only directory) leaves the processes to SQLite's busy handler, as before."""

    def __init__(self, lock_file: Path | None) -> None:
        self._threads = threading.Lock()
        self._lock_file = lock_file
        self._fd: int | None = None  # the lock file while this process holds the turn

    def acquire(self, timeout: float) -> bool:
        if not self._threads.acquire(timeout=timeout):
            return False
        fd = None
        try:
            fd = self._open()
            if fd is not None and not self._take_file(fd, time.monotonic() + timeout):
                raise TimeoutError
        except BaseException as exc:
            if fd is not None:
                os.close(fd)
            self._threads.release()
            if isinstance(exc, TimeoutError):
                return False
            raise
        self._fd = fd
        return True

    def _open(self) -> int | None:
        if self._lock_file is None:
            return None
        try:
            return os.open(self._lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            log.warning(
                "no SQLite writer lock file %s (%s): writers meet the busy handler", self._lock_file, exc
            )
            self._lock_file = None
            return None

    @staticmethod
    def _take_file(fd: int, deadline: float) -> bool:
        """The file lock, waiting at most until ``deadline``: tries without blocking, sleeping a little longer
        each time up to ``MAX_LOCK_POLL_SECONDS`` (flock has no timeout of its own)."""
        pause = 0.00005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(pause)
                pause = min(pause * 2, MAX_LOCK_POLL_SECONDS)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the file gives the lock up
        self._threads.release()


class WalCheckpointer:
    """Checkpoints, once a ``CHECKPOINT_SECONDS``, the WAL of the SQLite files committed to since the last
    round, on a daemon thread of its own that ends when a round finds nothing to do."""

    def __init__(self) -> None:
        self._written: set[str] = set()
        self._lock = threading.Lock()
        self._running = False

    def written(self, database: str) -> None:
        """A transaction on ``database`` committed."""
        with self._lock:
            self._written.add(database)
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="sqlite-checkpointer", daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(CHECKPOINT_SECONDS)
            with self._lock:
                due, self._written = self._written, set()
                if not due:
                    self._running = False
                    return
            for database in due:
                checkpoint(database)


def checkpoint(database: str) -> None:
    """One passive checkpoint of ``database``'s WAL (a file gone meanwhile, say a test's, is skipped: opened
    read-write only, never created)."""
    try:
        connection = sqlite3.connect(f"{Path(database).absolute().as_uri()}?mode=rw", uri=True, timeout=1)
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            connection.close()
    except sqlite3.Error as exc:
        log.debug("checkpoint of %s skipped: %s", database, exc)


checkpointer = WalCheckpointer()
