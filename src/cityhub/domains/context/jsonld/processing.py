"""JSON-LD 1.1 context processing reduced to what an NGSI-LD broker needs: term → IRI definitions and @vocab.

It follows the W3C "Context Processing" and "Create Term Definition" algorithms (and PyLD, the oracle in the
tests) for everything that decides which IRI a key or a type expands to: simple and expanded term definitions,
compact IRIs and the prefix flag, @vocab, keyword aliases, null mappings, @import, nested remote contexts and
dependency order inside one local context. It deliberately leaves out what only matters for values: @base,
@language/@direction, and applying type- or property-scoped contexts (they are kept, unapplied, on the term).

One NGSI-LD rule replaces a JSON-LD one: ``@protected`` is not enforced. The core context is always processed
last (see ``resolver``), so it wins over any user redefinition by position; refusing a user context that
redefines a protected term would break clients that list the core context first, which Orion-LD accepts too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from cityhub.domains.context.jsonld.errors import InvalidContext

INLINE = "inline"

KEYWORDS = frozenset(
    {
        "@base",
        "@container",
        "@context",
        "@direction",
        "@graph",
        "@id",
        "@import",
        "@included",
        "@index",
        "@json",
        "@language",
        "@list",
        "@nest",
        "@none",
        "@prefix",
        "@propagate",
        "@protected",
        "@reverse",
        "@set",
        "@type",
        "@value",
        "@version",
        "@vocab",
    }
)
KEYWORD_FORM = re.compile(r"^@[a-zA-Z]+$")
ABSOLUTE_IRI = re.compile(r"^([A-Za-z][A-Za-z0-9+\-.]*|_):[^\s]*$")
_GEN_DELIMS = frozenset(":/?#[]@")
_TERM_DEFINITION_KEYS = frozenset(
    {
        "@container",
        "@context",
        "@direction",
        "@id",
        "@index",
        "@language",
        "@nest",
        "@prefix",
        "@protected",
        "@reverse",
        "@type",
    }
)
_TYPE_KEYWORDS = frozenset({"@id", "@json", "@none", "@vocab"})

Dereference = Callable[[str], Any]
"""Given an absolute context URL, its document's ``@context`` member (raises when unavailable)."""


@dataclass(frozen=True, slots=True)
class TermDefinition:
    """What one term means: its IRI (None = explicitly unmapped) and the metadata JSON-LD attaches to it."""

    iri: str | None
    prefix: bool = False
    type_mapping: str | None = None
    container: tuple[str, ...] = ()
    reverse: bool = False
    scoped_context: Any = None
    source: str = INLINE


@dataclass
class ActiveContext:
    """The result of processing contexts in order: later definitions replace earlier ones."""

    terms: dict[str, TermDefinition] = field(default_factory=dict)
    vocab: str | None = None


def expand_iri(terms: Mapping[str, TermDefinition], vocab: str | None, value: str) -> str | None:
    """IRI expansion with ``vocab=true`` against finished definitions (no local context pending).

    Used for keys and type values: a term gives its IRI, ``prefix:suffix`` uses a prefix term, absolute IRIs
    and blank nodes pass through, anything else is appended to @vocab. None means "explicitly unmapped".
    """
    if value in KEYWORDS:
        return value
    definition = terms.get(value)
    if definition is not None:
        return definition.iri
    return expand_compact_or_vocab(terms, vocab, value)


def expand_compact_or_vocab(terms: Mapping[str, TermDefinition], vocab: str | None, value: str) -> str:
    """Expansion of a value that is not a defined term: compact IRI, absolute IRI, else @vocab-relative."""
    if value.find(":") > 0:
        prefix, suffix = value.split(":", 1)
        if prefix == "_" or suffix.startswith("//"):
            return value
        parent = terms.get(prefix)
        if parent is not None and parent.iri is not None and parent.prefix:
            return parent.iri + suffix
        if ABSOLUTE_IRI.match(value):
            return value
    if vocab is not None:
        return vocab + value
    return value


class ContextProcessor:
    """Applies local contexts (URL, object, array or null) to an ``ActiveContext``.

    Remote documents come from ``dereference`` (the resolver's caches and files); nesting through URLs and
    ``@import`` is limited to ``max_depth`` levels and cycles are refused, so a hostile context cannot make
    one request load without end.
    """

    def __init__(self, dereference: Dereference, max_depth: int) -> None:
        self._dereference = dereference
        self._max_depth = max_depth

    def apply(self, active: ActiveContext, local: Any) -> None:
        """Process ``local`` (a request's @context value) on top of ``active``."""
        self._apply(active, local, INLINE, ())

    def _apply(self, active: ActiveContext, local: Any, source: str, chain: tuple[str, ...]) -> None:
        if local is None:
            active.terms.clear()
            active.vocab = None
        elif isinstance(local, str):
            self._apply_url(active, self._absolute(local, source), chain)
        elif isinstance(local, list):
            for item in local:
                self._apply(active, item, source, chain)
        elif isinstance(local, dict):
            self._apply_object(active, self._with_import(local, source, chain), source)
        else:
            raise InvalidContext(
                f"a context must be a URL, an object or an array, not {_kind(local)}", _url(source)
            )

    def _absolute(self, url: str, source: str) -> str:
        if source != INLINE:
            url = urljoin(source, url)
        if not ABSOLUTE_IRI.match(url):
            raise InvalidContext(f"context URL {url!r} is not absolute", _url(source))
        return url

    def _load(self, url: str, chain: tuple[str, ...]) -> tuple[Any, tuple[str, ...]]:
        if url in chain:
            raise InvalidContext("recursive context inclusion: " + " -> ".join((*chain, url)), url)
        if len(chain) >= self._max_depth:
            raise InvalidContext(f"contexts nest deeper than {self._max_depth} levels", url)
        return self._dereference(url), (*chain, url)

    def _apply_url(self, active: ActiveContext, url: str, chain: tuple[str, ...]) -> None:
        document_context, nested_chain = self._load(url, chain)
        self._apply(active, document_context, url, nested_chain)

    def _with_import(self, local: dict[str, Any], source: str, chain: tuple[str, ...]) -> dict[str, Any]:
        """JSON-LD 1.1 ``@import``: the imported object's entries, overridden by the local ones."""
        if "@import" not in local:
            return local
        target = local["@import"]
        if not isinstance(target, str):
            raise InvalidContext("@import must be a URL", _url(source))
        imported, _ = self._load(self._absolute(target, source), chain)
        if not isinstance(imported, dict) or "@import" in imported:
            raise InvalidContext("an imported context must be a single object without @import", target)
        return {**imported, **{key: value for key, value in local.items() if key != "@import"}}

    def _apply_object(self, active: ActiveContext, local: dict[str, Any], source: str) -> None:
        if "@version" in local and local["@version"] != 1.1:
            raise InvalidContext(f"@version must be 1.1, not {local['@version']!r}", _url(source))
        if "@vocab" in local:
            active.vocab = self._vocab(active, local["@vocab"], source)
        builder = _TermBuilder(active, local, source)
        for term in local:
            if not term.startswith("@"):
                builder.define(term)

    def _vocab(self, active: ActiveContext, value: Any, source: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise InvalidContext("@vocab must be a string or null", _url(source))
        expanded = expand_iri(active.terms, active.vocab, value)
        if expanded is None or not ABSOLUTE_IRI.match(expanded):
            raise InvalidContext(f"@vocab {value!r} is not an absolute IRI", _url(source))
        return expanded


class _TermBuilder:
    """Create Term Definition for every term of one local context, defining dependencies (prefixes, terms
    used as @id or @type) first, and detecting cyclic IRI mappings.
    """

    def __init__(self, active: ActiveContext, local: dict[str, Any], source: str) -> None:
        self._active = active
        self._local = local
        self._source = source
        self._defined: dict[str, bool] = {}

    def define(self, term: str) -> None:
        state = self._defined.get(term)
        if state is True:
            return
        if state is False:
            raise InvalidContext(f"cyclic IRI mapping through term {term!r}", _url(self._source))
        self._defined[term] = False
        previous = self._active.terms.pop(term, None)
        definition = self._definition(term, self._local[term])
        if definition is not None:
            self._active.terms[term] = definition
        elif previous is not None:
            self._active.terms[term] = previous
        self._defined[term] = True

    def _definition(self, term: str, raw: Any) -> TermDefinition | None:
        if term == "":
            raise self._error("a term must not be empty")
        simple = raw is None or isinstance(raw, str)
        value: dict[str, Any] = {"@id": raw} if simple else raw
        if not isinstance(value, dict):
            raise self._error(f"the definition of {term!r} must be a string, an object or null")
        unknown = sorted(set(value) - _TERM_DEFINITION_KEYS)
        if unknown:
            raise self._error(f"the definition of {term!r} has unknown entries {unknown}")
        iri = self._iri(term, value)
        if iri is _IGNORED:
            return None
        return TermDefinition(
            iri=iri,
            prefix=self._prefix_flag(term, value, iri, simple),
            type_mapping=self._type_mapping(term, value),
            container=self._container(term, value),
            reverse="@reverse" in value,
            scoped_context=value.get("@context"),
            source=self._source,
        )

    def _iri(self, term: str, value: dict[str, Any]) -> Any:
        if "@reverse" in value:
            return self._mapped_iri(term, value["@reverse"], allow_keyword=False)
        if "@id" in value and value["@id"] != term:
            return self._mapped_iri(term, value["@id"], allow_keyword=True)
        return self._implicit_iri(term)

    def _mapped_iri(self, term: str, raw: Any, *, allow_keyword: bool) -> Any:
        if raw is None:
            return None
        if not isinstance(raw, str):
            raise self._error(f"the IRI of {term!r} must be a string")
        if raw not in KEYWORDS and KEYWORD_FORM.match(raw):
            return _IGNORED
        iri = self.expand(raw)
        if iri is None:
            return None
        if iri in KEYWORDS:
            if not allow_keyword or iri == "@context":
                raise self._error(f"{term!r} cannot alias {iri}")
            return iri
        if not ABSOLUTE_IRI.match(iri):
            raise self._error(f"the IRI of {term!r} ({raw!r}) is not absolute and no @vocab applies")
        return iri

    def _implicit_iri(self, term: str) -> str:
        colon = term.find(":")
        if colon > 0:
            prefix, suffix = term[:colon], term[colon + 1 :]
            if prefix in self._local:
                self.define(prefix)
            parent = self._active.terms.get(prefix)
            if parent is not None and parent.iri is not None:
                return parent.iri + suffix
            return term
        if "/" in term:
            return term
        if self._active.vocab is None:
            raise self._error(f"term {term!r} has no IRI and no @vocab applies")
        return self._active.vocab + term

    def _prefix_flag(self, term: str, value: dict[str, Any], iri: str | None, simple: bool) -> bool:
        if "@prefix" in value:
            flag = value["@prefix"]
            if not isinstance(flag, bool):
                raise self._error(f"@prefix of {term!r} must be true or false")
            return flag
        if not simple or iri is None or ":" in term or "/" in term:
            return False
        return iri[-1:] in _GEN_DELIMS or iri.startswith("_:")

    def _type_mapping(self, term: str, value: dict[str, Any]) -> str | None:
        raw = value.get("@type")
        if raw is None:
            return None
        if not isinstance(raw, str):
            raise self._error(f"@type of {term!r} must be a string")
        if raw in _TYPE_KEYWORDS:
            return raw
        expanded = self.expand(raw)
        if expanded is None or not ABSOLUTE_IRI.match(expanded):
            raise self._error(f"@type of {term!r} ({raw!r}) is not an absolute IRI")
        return expanded

    def _container(self, term: str, value: dict[str, Any]) -> tuple[str, ...]:
        raw = value.get("@container")
        if raw is None:
            return ()
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise self._error(f"@container of {term!r} must be a keyword or a list of keywords")
        return tuple(items)

    def expand(self, value: str) -> str | None:
        """IRI expansion during context processing: terms of this local context are defined on demand."""
        if value in KEYWORDS:
            return value
        if KEYWORD_FORM.match(value):
            return None
        if value in self._local and self._defined.get(value) is not True:
            self.define(value)
        colon = value.find(":")
        if colon > 0 and value[:colon] in self._local and not self._defined.get(value[:colon]):
            self.define(value[:colon])
        return expand_iri(self._active.terms, self._active.vocab, value)

    def _error(self, reason: str) -> InvalidContext:
        return InvalidContext(reason, _url(self._source))


_IGNORED = object()


def _url(source: str) -> str | None:
    return None if source == INLINE else source


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    return "a number" if isinstance(value, int | float) else type(value).__name__
