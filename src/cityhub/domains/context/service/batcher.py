"""Group commit for partial attribute updates, the busiest write of a context broker.

Each process runs one writer thread per database. Requests queue their update and wait; the writer takes
everything queued (up to ``MAX_BATCH``), applies the updates in order in ONE transaction — each through
``entities.patch_attribute``, so history and subscriptions see every change — commits once, then answers
every request. A request is answered only after the transaction holding its change committed.

An update that is refused (unknown entity or attribute, bad fragment) raises before it writes anything, so
it is answered with its error and the others go on. Should the transaction itself fail, every update of the
batch is retried in a transaction of its own, so one bad row never fails its neighbours.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cityhub.domains.context.service import entities
from cityhub.domains.context.service.tenants import TenantRef
from cityhub.kernel.db import Database

log = logging.getLogger("cityhub.context")

MAX_BATCH = 256
IDLE_SECONDS = 10.0


@dataclass
class _Update:
    tenant: TenantRef
    entity_id: str
    name: str
    fragment: Mapping[str, Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None] = field(repr=False)

    def settle(self, error: BaseException | None) -> None:
        self.loop.call_soon_threadsafe(_settle, self.future, error)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():  # the request was cancelled (client gone); its change stands or not as decided
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class PatchBatcher:
    """The writer of one database in this process (see the module docstring)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._queue: queue.SimpleQueue[_Update] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = False

    async def patch(self, tenant: TenantRef, entity_id: str, name: str, fragment: Mapping[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        update = _Update(tenant, entity_id, name, fragment, loop, loop.create_future())
        self._queue.put(update)
        self._ensure_running()
        await update.future

    def _ensure_running(self) -> None:
        with self._lock:
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="context-patch-writer", daemon=True).start()

    def _next(self) -> _Update | None:
        """The next update; None (and the thread ends) after an idle spell, so idle apps keep no thread."""
        try:
            return self._queue.get(timeout=IDLE_SECONDS)
        except queue.Empty:
            with self._lock:
                if self._queue.empty():
                    self._running = False
                    return None
            return self._queue.get()

    def _run(self) -> None:
        while (first := self._next()) is not None:
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._apply(batch)
            except Exception:  # the writer must outlive any failure: each update is retried alone
                log.exception("batched attribute updates failed together; retrying one by one")
                for update in batch:
                    self._apply_alone(update)

    def _apply(self, batch: list[_Update]) -> None:
        patches = [entities.AttributePatch(u.tenant, u.entity_id, u.name, u.fragment) for u in batch]
        with self.database.unit_of_work() as session:
            outcomes = entities.patch_attributes(session, patches)
        for update, outcome in zip(batch, outcomes, strict=True):
            update.settle(outcome)

    def _apply_alone(self, update: _Update) -> None:
        try:
            with self.database.unit_of_work() as session:
                entities.patch_attribute(
                    session, update.tenant, update.entity_id, update.name, update.fragment
                )
        except Exception as exc:
            update.settle(exc)
        else:
            update.settle(None)


_lock = threading.Lock()
_ATTRIBUTE = "_context_patch_batcher"


def batcher_for(database: Database) -> PatchBatcher:
    """The writer of this Database object, kept on the object so it lives and dies with it."""
    batcher: PatchBatcher | None = getattr(database, _ATTRIBUTE, None)
    if batcher is None:
        with _lock:
            batcher = getattr(database, _ATTRIBUTE, None)
            if batcher is None:
                batcher = PatchBatcher(database)
                setattr(database, _ATTRIBUTE, batcher)
    return batcher
