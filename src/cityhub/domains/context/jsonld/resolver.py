"""From an @context value (Link URL, body object, or a list of both) to term definitions, by NGSI-LD rules.

Where a context URL is looked up, first match wins:

1. the operator's map ``CITYHUB_CONTEXT__CONTEXT_MAP`` (URL → local file);
2. contexts registered at run time (``register``), then the ``local_source`` (contexts hosted through
   ``/jsonldContexts`` by any process, read from the database; kept ``LOCAL_SOURCE_TTL_SECONDS``);
3. core context URLs: the shipped file of that version; a version not shipped (v1.0, v1.5) and the unversioned
   URL get the configured core, so naming any core context never reaches the network;
4. the other shipped files (Smart Data Models), under their canonical URLs (``contexts/urlmap.json``);
5. the network (``remote.RemoteContexts``): short timeout, size limit, memory + disk cache, negative cache.

The core context is applied after the user's context, always (GS CIM 009, "Core @context" and "JSON-LD
@context resolution": the core @context is implicitly included and its terms cannot be overridden; Orion-LD:
"the core context overrides any term defined in both your user context and the core context", issue #1038).
JSON-LD's last definition wins, so a user redefinition of ``type``, ``location``, ``Property``… is silently
replaced; the terms concerned are reported in ``ResolvedContext.shadowed`` for logging. A consequence, as in
any processor given ``[user, core]``: the core's ``@vocab`` (the default context) also replaces a user
``@vocab``.

``mapper(context)`` memoises one ``TermMapper`` per distinct context (the Link URL itself is the key), so the
request path is a dictionary lookup once a context has been seen. Downloads are synchronous: async routes call
``cached_mapper`` first and run ``mapper`` in a worker thread only on a miss.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cityhub.domains.context.jsonld.errors import InvalidContext
from cityhub.domains.context.jsonld.mapper import TermMapper
from cityhub.domains.context.jsonld.processing import ActiveContext, ContextProcessor, TermDefinition
from cityhub.domains.context.jsonld.remote import (
    Clock,
    DiskCache,
    Fetcher,
    HttpFetcher,
    RemoteContexts,
    RemotePolicy,
    TtlLru,
    parse_context_document,
)
from cityhub.domains.context.jsonld.sources import (
    canonical_core_url,
    core_context_url,
    is_core_context_url,
    read_context_file,
    shipped_context_files,
)
from cityhub.domains.context.settings import ContextSettings
from cityhub.kernel.settings import Settings, domain_settings

_NO_CONTEXT_KEY = "\x00core"
LOCAL_SOURCE_TTL_SECONDS = 30.0

LocalSource = Callable[[str], dict[str, Any] | None]
_local_source_factory: Callable[[Settings], LocalSource] | None = None


def set_local_source_factory(factory: Callable[[Settings], LocalSource] | None) -> None:
    """Give every resolver built by ``from_settings`` a local source (installed by the hosted contexts)."""
    global _local_source_factory
    _local_source_factory = factory


@dataclass(frozen=True)
class ResolvedContext:
    """A request's @context after resolution: merged term definitions (core last) and what produced them."""

    key: str
    user_context: Any
    core_url: str
    terms: Mapping[str, TermDefinition]
    vocab: str | None
    urls: tuple[str, ...] = ()
    shadowed: frozenset[str] = frozenset()
    expires_at: float | None = None

    @property
    def link_url(self) -> str | None:
        """The URL to echo in a response Link header; None when the context was inline (it must be hosted)."""
        if self.user_context is None:
            return self.core_url
        return self.user_context if isinstance(self.user_context, str) else None

    @property
    def body_context(self) -> Any:
        """The value to echo as ``@context`` in an application/ld+json response body."""
        return self.core_url if self.user_context is None else self.user_context


def context_key(context: Any) -> str:
    """A short key identifying a context value: the URL itself (the hot path), else a digest of its JSON."""
    if context is None:
        return _NO_CONTEXT_KEY
    if isinstance(context, str):
        return context
    try:
        canonical = json.dumps(context, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InvalidContext(f"not a JSON value ({exc})") from None
    return "\x00" + hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class _Trace:
    """The URLs one resolution dereferenced, and the earliest moment one of them must be checked again."""

    urls: list[str] = field(default_factory=list)
    expires_at: float | None = None

    def note(self, url: str, expires_at: float | None) -> None:
        self.urls.append(url)
        if expires_at is not None and (self.expires_at is None or expires_at < self.expires_at):
            self.expires_at = expires_at


class ContextResolver:
    """Resolves @context values into ``ResolvedContext``/``TermMapper``; one per process, shared."""

    def __init__(
        self,
        settings: ContextSettings | None = None,
        *,
        cache_dir: Path | None = None,
        fetcher: Fetcher | None = None,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        local_source: LocalSource | None = None,
    ) -> None:
        self.settings = settings or ContextSettings()
        self.local_source = local_source
        self._clock = clock
        self.core_url = core_context_url(self.settings.core_context_version)
        self._mapped = dict(self.settings.context_map)
        self._shipped = shipped_context_files()
        self._files: dict[Path, dict[str, Any]] = {}
        self._registered: dict[str, dict[str, Any]] = {}
        self._remote = RemoteContexts(
            fetcher or HttpFetcher(self.settings.fetch_timeout_seconds, self.settings.max_context_bytes),
            RemotePolicy(
                enabled=self.settings.remote_fetch,
                ttl_seconds=self.settings.cache_ttl_seconds,
                failure_ttl_seconds=self.settings.failure_ttl_seconds,
                max_entries=self.settings.cache_max_entries,
            ),
            DiskCache(cache_dir) if cache_dir is not None else None,
            clock,
            wall_clock,
        )
        self._mappers: TtlLru[TermMapper] = TtlLru(self.settings.cache_max_entries, clock)
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, section: ContextSettings | None = None) -> ContextResolver:
        """The resolver a process uses, configured from ``CITYHUB_CONTEXT__*`` (disk cache under var_dir)."""
        section = section or domain_settings(ContextSettings)
        local_source = _local_source_factory(settings) if _local_source_factory is not None else None
        fetcher = HttpFetcher(
            section.fetch_timeout_seconds,
            section.max_context_bytes,
            blocked_networks=settings.outbound_blocked_networks,
        )
        return cls(
            section, cache_dir=section.cache_directory(settings), local_source=local_source, fetcher=fetcher
        )

    # -- the request path -------------------------------------------------------------------------------

    def mapper(self, context: Any) -> TermMapper:
        """The memoised TermMapper of a context value (None = core only); may download on a miss."""
        key = context_key(context)
        mapper = self._mappers.get(key)
        if mapper is None:
            resolved = self._resolve(context, key)
            mapper = TermMapper(resolved)
            self._mappers.put(key, mapper, resolved.expires_at)
        return mapper

    def cached_mapper(self, context: Any) -> TermMapper | None:
        """The TermMapper if already built and fresh; never does I/O (for async routes)."""
        return self._mappers.get(context_key(context))

    def resolve(self, context: Any) -> ResolvedContext:
        """Resolve without memoising (``mapper`` is the cached entry point)."""
        return self._resolve(context, context_key(context))

    # -- stored contexts (/jsonldContexts) --------------------------------------------------------------

    def register(self, url: str, document: Any) -> None:
        """Serve ``document`` (object or JSON text/bytes with an @context member) for ``url`` from now on.

        Only the document's shape is checked here; call ``resolve(document["@context"])`` first to refuse
        invalid term definitions before storing one.
        """
        if is_core_context_url(url):
            raise ValueError(f"{url} is a core context URL; the core context cannot be replaced at run time")
        parsed = copy.deepcopy(parse_context_document(url, document))
        with self._lock:
            self._registered[url] = parsed
        self._remote.forget(url)
        self._mappers.clear()

    def unregister(self, url: str) -> bool:
        """Stop serving a registered context; True if it was registered."""
        with self._lock:
            removed = self._registered.pop(url, None) is not None
        if removed:
            self._mappers.clear()
        return removed

    def forget(self, url: str) -> None:
        """Drop a downloaded context from the caches, so that the next use downloads it again."""
        self._remote.forget(url)
        self._mappers.clear()

    def document(self, url: str) -> dict[str, Any]:
        """A copy of the context document a URL stands for (to serve it, or to feed a JSON-LD processor)."""
        document, _ = self._document(url)
        return copy.deepcopy(document)

    def document_loader(self) -> Callable[..., dict[str, Any]]:
        """A PyLD ``documentLoader`` serving exactly what this resolver serves (the oracle's, in tests)."""

        def load(url: str, options: Any = None) -> dict[str, Any]:
            document = self.document(url)
            return {
                "contentType": "application/ld+json",
                "contextUrl": None,
                "documentUrl": url,
                "document": document,
            }

        return load

    # -- resolution -------------------------------------------------------------------------------------

    def _resolve(self, context: Any, key: str) -> ResolvedContext:
        trace = _Trace()
        processor = ContextProcessor(
            lambda url: self._context_of(url, trace), self.settings.max_nesting_depth
        )
        active = ActiveContext()
        processor.apply(active, context)
        user_terms = dict(active.terms)
        user_urls = tuple(trace.urls)
        processor.apply(active, self.core_url)
        shadowed = frozenset(
            term
            for term, definition in user_terms.items()
            if active.terms[term].source == self.core_url and active.terms[term].iri != definition.iri
        )
        return ResolvedContext(
            key=key,
            user_context=copy.deepcopy(context),
            core_url=self.core_url,
            terms=MappingProxyType(active.terms),
            vocab=active.vocab,
            urls=user_urls,
            shadowed=shadowed,
            expires_at=trace.expires_at,
        )

    def _context_of(self, url: str, trace: _Trace) -> Any:
        document, expires_at = self._document(url)
        trace.note(url, expires_at)
        return document["@context"]

    def _document(self, url: str) -> tuple[dict[str, Any], float | None]:
        mapped = self._mapped.get(url)
        if mapped is not None:
            return self._file(url, mapped), None
        registered = self._registered.get(url)
        if registered is not None:
            return registered, None
        local = self.local_source(url) if self.local_source is not None else None
        if local is not None:
            return parse_context_document(url, local), self._clock() + LOCAL_SOURCE_TTL_SECONDS
        if is_core_context_url(url):
            return self._core_document(url), None
        shipped = self._shipped.get(url)
        if shipped is not None:
            return self._file(url, shipped), None
        return self._remote.get(url)

    def _core_document(self, url: str) -> dict[str, Any]:
        canonical = canonical_core_url(url)
        path = self._mapped.get(canonical) or self._shipped.get(canonical)
        if path is None:
            canonical = self.core_url
            path = self._mapped.get(canonical) or self._shipped[canonical]
        return self._file(canonical, path)

    def _file(self, url: str, path: Path) -> dict[str, Any]:
        document = self._files.get(path)
        if document is None:
            document = read_context_file(url, path)
            self._files[path] = document
        return document
