"""A short-lived, per-process cache of principals, so the hot path of every request needs no query.

Changes made in this process (role grants and withdrawals, disabling an account, revoking a key) evict
their entries as soon as the change commits; changes made by another process are seen once the entry
expires (``CITYHUB_IDENTITY__PRINCIPAL_CACHE_SECONDS``, 2 s by default; 0 turns the cache off). An entry
past half its life is *due*: the web layer reloads it in the background while it still answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import NamedTuple

from sqlalchemy import event
from sqlalchemy.orm import Session

from cityhub.domains.identity.service.access import Principal

MAX_ENTRIES = 50_000


class _Entry(NamedTuple):
    due_at: float
    expires_at: float
    principal: Principal


class PrincipalCache:
    def __init__(self) -> None:
        self._entries: dict[Hashable, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, ttl: float) -> Principal | None:
        if ttl <= 0:
            return None
        entry = self._entries.get(key)
        if entry is None or entry.expires_at < time.monotonic():
            return None
        return entry.principal

    def due(self, key: Hashable) -> bool:
        """Whether the entry has lived half its time and should be reloaded."""
        entry = self._entries.get(key)
        return entry is not None and entry.due_at <= time.monotonic()

    def put(self, key: Hashable, principal: Principal, ttl: float) -> None:
        if ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()  # crude but bounded; entries live seconds anyway
            now = time.monotonic()
            self._entries[key] = _Entry(now + ttl / 2, now + ttl, principal)

    def forget(self, kind: str, principal_id: int) -> None:
        with self._lock:
            stale = [
                key
                for key, entry in self._entries.items()
                if entry.principal.kind == kind and entry.principal.id == principal_id
            ]
            for key in stale:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


principal_cache = PrincipalCache()


def forget_after_commit(session: Session, kind: str, principal_id: int) -> None:
    """Evict once the change is committed (evicting earlier would let a concurrent read re-cache old data)."""

    def evict(_session: Session) -> None:
        principal_cache.forget(kind, principal_id)

    event.listen(session, "after_commit", evict, once=True)
    principal_cache.forget(kind, principal_id)
