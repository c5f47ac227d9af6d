"""The Runner: threads that take jobs (and event deliveries) from the shared queue until stopped.

Used by ``cityhub worker`` (a process of its own, several threads) and by the app's embedded runner
(SQLite, one thread). Idle threads sleep until woken by work committed in this process, by a PostgreSQL
NOTIFY from another process, or by the polling interval — whichever comes first.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta

from cityhub.kernel import jobs
from cityhub.kernel.db import Database, utcnow
from cityhub.kernel.settings import Settings
from cityhub.worker.listener import NotifyListener

log = logging.getLogger("cityhub.worker")


class Runner:
    """``concurrency`` worker threads over one database, plus a LISTEN thread on PostgreSQL."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        registry: jobs.JobRegistry,
        *,
        concurrency: int = 1,
        lease: timedelta = jobs.DEFAULT_LEASE,
        name: str | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.database = database
        self.settings = settings
        self.registry = registry
        self.concurrency = concurrency
        self.lease = lease
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listener: NotifyListener | None = None
        self._schedule_lock = threading.Lock()
        self._next_schedule = jobs.EPOCH

    def start(self) -> Runner:
        """Start the threads (daemons: they never keep a process alive on their own); returns self."""
        if self._threads:
            raise RuntimeError("runner already started")
        if self.database.dialect == "postgresql":
            self._listener = NotifyListener(self.database, jobs.NOTIFY_CHANNEL, jobs.work_signal.notify)
            self._listener.start()
        for index in range(self.concurrency):
            thread = threading.Thread(
                target=self._serve,
                args=(f"{self.name}/{index}",),
                name=f"cityhub-worker-{index}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        log.info("worker %s started with %s thread(s)", self.name, self.concurrency)
        return self

    def request_stop(self) -> None:
        """Ask the threads to stop after their current job; safe from a signal handler (no joining)."""
        self._stopping.set()
        jobs.work_signal.notify()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the jobs in hand, then stop; idempotent."""
        self.request_stop()
        for thread in self._threads:
            thread.join(timeout)
        if self._listener is not None:
            self._listener.stop()
        log.info("worker %s stopped", self.name)

    def wait(self) -> None:
        """Block until a stop is requested (by a signal handler or another thread)."""
        while not self._stopping.wait(1.0):
            pass

    def run_until_idle(self) -> int:
        """Enqueue due periodic jobs, then run due work on every thread until none is left; jobs run.

        A queue failure (database unreachable) is raised here, so ``cityhub worker --once`` exits non-zero.
        """
        self._schedule_periodic(force=True)
        counts = [0] * self.concurrency
        errors: list[Exception] = []

        def drain(index: int) -> None:
            try:
                while not self._stopping.is_set() and self._run_one(f"{self.name}/{index}"):
                    counts[index] += 1
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=drain, args=(index,)) for index in range(self.concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return sum(counts)

    def _serve(self, worker: str) -> None:
        while not self._stopping.is_set():
            seen = jobs.work_signal.generation
            try:
                self._schedule_periodic()
                if self._run_one(worker):
                    continue
            except Exception:
                log.exception("worker %s: queue unavailable, retrying", worker)
            jobs.work_signal.wait(seen, self.settings.jobs.poll_seconds)

    def _run_one(self, worker: str) -> bool:
        return jobs.run_next(self.database, self.registry, self.settings, worker, lease=self.lease)

    def _schedule_periodic(self, force: bool = False) -> None:
        """Enqueue periodic jobs when a new period starts (not every poll: on SQLite that is a write).

        Every runner does this; the dedupe keys make all but the first harmless.
        """
        if not self.registry.periodic:
            return
        with self._schedule_lock:
            now = utcnow()
            if not force and now < self._next_schedule:
                return
            with self.database.unit_of_work() as session:
                jobs.schedule_periodic(session, self.registry.periodic, now=now)
            self._next_schedule = jobs.next_period_start(self.registry.periodic, now)
