"""LISTEN on PostgreSQL so that idle workers wake as soon as another process commits new work.

The listener holds one dedicated connection (detached from the pool, so a LISTENing connection is never
handed to application code). Losing it only costs latency: workers keep polling, and the listener
reconnects.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from cityhub.kernel.db import Database

log = logging.getLogger("cityhub.worker")

CHECK_SECONDS = 1.0  # how often the listener notices stop()
RECONNECT_SECONDS = 5.0


class NotifyListener:
    def __init__(self, database: Database, channel: str, on_notify: Callable[[], None]) -> None:
        self.database = database
        self.channel = channel
        self.on_notify = on_notify
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"cityhub-listen-{channel}", daemon=True)
        self.listening = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(CHECK_SECONDS * 5)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen()
            except Exception:
                log.warning("LISTEN %s failed; polling until reconnected", self.channel, exc_info=True)
                self.listening.clear()
                self._stopping.wait(RECONNECT_SECONDS)

    def _listen(self) -> None:
        connection = self._connect()
        try:
            connection.execute(f'LISTEN "{self.channel}"')
            self.listening.set()
            while not self._stopping.is_set():
                for _notification in connection.notifies(timeout=CHECK_SECONDS, stop_after=1):
                    self.on_notify()
        finally:
            connection.close()

    def _connect(self) -> Any:
        """A psycopg connection in autocommit mode, outside the engine's pool."""
        pooled = self.database.engine.raw_connection()
        connection = pooled.driver_connection
        pooled.detach()
        assert connection is not None
        connection.autocommit = True
        return connection
