"""Downloading @context documents that are neither shipped, mapped nor stored, without ever blocking for long.

Brokers that fetch contexts on the request path hang or fail when the network does (Orion-LD #952, Scorpio
#305). Here every download has a short timeout and a size limit; successes are kept in memory (LRU + TTL) and,
optionally, on disk so that a restart without network still has them; failures are remembered for a while
(negative cache) so a dead URL costs one timeout per ``failure_ttl``, not one per request; concurrent requests
for the same URL wait for one download instead of starting many; and when a refresh fails the previous copy
keeps being served.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx

from cityhub.domains.context.jsonld.errors import ContextNotAvailable, InvalidContext, JsonLdContextError
from cityhub.kernel.outbound import DEFAULT_BLOCKED_NETWORKS, BlockedAddress, check_host

log = logging.getLogger("cityhub.context.jsonld")

Fetcher = Callable[[str], bytes]
"""Downloads one URL and returns its body; raises ContextNotAvailable on any failure."""

Clock = Callable[[], float]

ACCEPT = "application/ld+json, application/json;q=0.9"

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    value: V
    expires_at: float | None


class TtlLru(Generic[V]):
    """A thread-safe LRU map whose entries may expire; stale entries stay readable until evicted."""

    def __init__(self, max_entries: int, clock: Clock) -> None:
        self._entries: OrderedDict[str, _Entry[V]] = OrderedDict()
        self._max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        """The value if present and not expired."""
        entry = self.entry(key)
        if entry is None or (entry.expires_at is not None and entry.expires_at <= self._clock()):
            return None
        return entry.value

    def entry(self, key: str) -> _Entry[V] | None:
        """The entry even if expired (to serve a stale copy when a refresh fails)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: str, value: V, expires_at: float | None) -> None:
        with self._lock:
            self._entries[key] = _Entry(value, expires_at)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def pop(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class DiskCache:
    """Downloaded contexts as files ``<sha256(url)>.json`` holding the URL, download time and document.

    Best effort: an unreadable or unwritable cache is logged and ignored, never a request failure.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, url: str) -> Path:
        return self.directory / f"{hashlib.sha256(url.encode()).hexdigest()}.json"

    def read(self, url: str) -> tuple[dict[str, Any], float] | None:
        """(document, wall-clock download time), or None."""
        try:
            record = json.loads(self._path(url).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable cached @context for %s: %s", url, exc)
            return None
        if (
            not isinstance(record, dict)
            or record.get("url") != url
            or not isinstance(record.get("document"), dict)
        ):
            return None
        return record["document"], float(record.get("fetched_at", 0))

    def write(self, url: str, document: dict[str, Any], fetched_at: float) -> None:
        path = self._path(url)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            record = {"url": url, "fetched_at": fetched_at, "document": document}
            temporary.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
            os.replace(temporary, path)
        except OSError as exc:
            log.warning("cannot keep @context %s on disk: %s", url, exc)
            temporary.unlink(missing_ok=True)


class HttpFetcher:
    """GET with a timeout per network step and for the whole body, and a size limit checked while reading
    (so neither a slow drip nor a huge or compressed-bomb body holds a request).
    """

    def __init__(
        self,
        timeout: float,
        max_bytes: int,
        client: httpx.Client | None = None,
        blocked_networks: Sequence[str] = DEFAULT_BLOCKED_NETWORKS,
    ) -> None:
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._blocked = tuple(blocked_networks)
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,
            max_redirects=5,
            headers={"Accept": ACCEPT},
            event_hooks={"request": [self._check_address]},  # every hop, redirects included
        )

    def _check_address(self, request: httpx.Request) -> None:
        check_host(request.url.host, request.url.port, self._blocked)

    def __call__(self, url: str) -> bytes:
        deadline = time.monotonic() + self._timeout
        try:
            with self._client.stream("GET", url) as response:
                if not response.is_success:
                    raise ContextNotAvailable(url, f"the server answered HTTP {response.status_code}")
                self._check_declared_length(url, response)
                return self._read_body(url, response, deadline)
        except BlockedAddress as exc:
            raise ContextNotAvailable(url, str(exc)) from None
        except httpx.TimeoutException:
            raise ContextNotAvailable(url, f"no answer within {self._timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise ContextNotAvailable(url, f"{type(exc).__name__}: {exc}") from None

    def _check_declared_length(self, url: str, response: httpx.Response) -> None:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise ContextNotAvailable(url, f"larger than {self._max_bytes} bytes")

    def _read_body(self, url: str, response: httpx.Response, deadline: float) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self._max_bytes:
                raise ContextNotAvailable(url, f"larger than {self._max_bytes} bytes")
            if time.monotonic() > deadline:
                raise ContextNotAvailable(url, f"download took longer than {self._timeout:g} s")
            chunks.append(chunk)
        return b"".join(chunks)


def parse_context_document(url: str | None, body: bytes | str | Any) -> dict[str, Any]:
    """A context document: a JSON object with an ``@context`` member (JSON-LD "invalid remote context")."""
    document = body
    if isinstance(body, bytes | str):
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise InvalidContext(f"not JSON ({exc})", url) from None
    if not isinstance(document, dict) or "@context" not in document:
        raise InvalidContext("a context document must be a JSON object with an @context member", url)
    return document


@dataclass(frozen=True)
class RemotePolicy:
    """How remote contexts are fetched and cached (from ContextSettings)."""

    enabled: bool = True
    ttl_seconds: float = 3600.0
    failure_ttl_seconds: float = 60.0
    max_entries: int = 512


class RemoteContexts:
    """The network tier of the resolver: memory cache → negative cache → disk cache → one download."""

    def __init__(
        self,
        fetcher: Fetcher,
        policy: RemotePolicy,
        disk: DiskCache | None = None,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
    ) -> None:
        self._fetcher = fetcher
        self._policy = policy
        self._disk = disk
        self._clock = clock
        self._wall_clock = wall_clock
        self._documents: TtlLru[dict[str, Any]] = TtlLru(policy.max_entries, clock)
        self._failures: TtlLru[JsonLdContextError] = TtlLru(policy.max_entries, clock)
        self._flights: dict[str, threading.Lock] = {}
        self._flights_lock = threading.Lock()

    def get(self, url: str) -> tuple[dict[str, Any], float | None]:
        """The document of ``url`` and when (monotonic clock) it should be checked again."""
        cached = self._fresh(url)
        if cached is not None:
            return cached
        with self._single_flight(url):
            cached = self._fresh(url)
            if cached is not None:
                return cached
            return self._refresh(url)

    def forget(self, url: str) -> None:
        self._documents.pop(url)
        self._failures.pop(url)

    def _fresh(self, url: str) -> tuple[dict[str, Any], float | None] | None:
        entry = self._documents.entry(url)
        if entry is not None and entry.expires_at is not None and entry.expires_at > self._clock():
            return entry.value, entry.expires_at
        failure = self._failures.get(url)
        if failure is not None:
            raise copy.copy(failure)
        return None

    @contextmanager
    def _single_flight(self, url: str) -> Iterator[None]:
        with self._flights_lock:
            lock = self._flights.setdefault(url, threading.Lock())
        try:
            with lock:
                yield
        finally:
            with self._flights_lock:
                if not lock.locked():
                    self._flights.pop(url, None)

    def _refresh(self, url: str) -> tuple[dict[str, Any], float | None]:
        now = self._clock()
        on_disk = self._disk.read(url) if self._disk is not None else None
        if on_disk is not None and self._age(on_disk) < self._policy.ttl_seconds:
            expires_at = now + self._policy.ttl_seconds - self._age(on_disk)
            self._documents.put(url, on_disk[0], expires_at)
            return on_disk[0], expires_at
        stale = self._previous_copy(url, on_disk)
        if not self._policy.enabled:
            if stale is not None:
                return self._keep(url, stale, now)
            raise ContextNotAvailable(
                url, "not shipped, not mapped to a local file, and fetching is disabled"
            )
        try:
            document = self._download(url)
        except ContextNotAvailable as error:
            if stale is not None:
                log.warning("serving the previous copy of @context %s: %s", url, error.reason)
                return self._keep(url, stale, now)
            self._failures.put(url, error, now + self._policy.failure_ttl_seconds)
            raise
        except InvalidContext as error:
            self._failures.put(url, error, now + self._policy.failure_ttl_seconds)
            raise
        return self._store(url, document, now)

    def _age(self, on_disk: tuple[dict[str, Any], float]) -> float:
        return self._wall_clock() - on_disk[1]

    def _previous_copy(self, url: str, on_disk: tuple[dict[str, Any], float] | None) -> dict[str, Any] | None:
        """An expired copy (memory first, then disk) to fall back on when the network fails."""
        entry = self._documents.entry(url)
        if entry is not None:
            return entry.value
        return on_disk[0] if on_disk is not None else None

    def _keep(self, url: str, document: dict[str, Any], now: float) -> tuple[dict[str, Any], float]:
        """Serve a stale copy, and try the network again only after ``failure_ttl``."""
        expires_at = now + self._policy.failure_ttl_seconds
        self._documents.put(url, document, expires_at)
        return document, expires_at

    def _download(self, url: str) -> dict[str, Any]:
        if not url.startswith(("http://", "https://")):
            raise ContextNotAvailable(url, "only http and https URLs can be downloaded")
        return parse_context_document(url, self._fetcher(url))

    def _store(self, url: str, document: dict[str, Any], now: float) -> tuple[dict[str, Any], float]:
        expires_at = now + self._policy.ttl_seconds
        self._failures.pop(url)
        self._documents.put(url, document, expires_at)
        if self._disk is not None:
            self._disk.write(url, document, self._wall_clock())
        return document, expires_at
