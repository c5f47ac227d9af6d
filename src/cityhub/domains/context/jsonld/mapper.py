"""Term ↔ IRI mapping for one resolved @context, by dictionary lookup (no JSON-LD processor on the hot path).

Expansion follows JSON-LD IRI expansion with ``vocab=true`` (what a JSON-LD processor does to keys and
``@type`` values): a defined term gives its IRI, ``prefix:suffix`` uses a prefix term, absolute IRIs pass
through, anything else is appended to @vocab — the NGSI-LD default
``https://uri.etsi.org/ngsi-ld/default-context/`` supplied by the core context's @vocab (GS CIM 009, "Core
@context"). One deliberate difference: a term mapped to null, which a JSON-LD processor would drop, falls
back to @vocab, because an NGSI-LD broker must not lose attributes.

Compaction is the inverse, in JSON-LD's order of preference: the shortest term (then the lexically least)
whose IRI matches, else a @vocab-relative name, else the shortest compact IRI ``prefix:suffix``, else the IRI.
Every result is checked to expand back to the same IRI, so ``expand_term(compact_iri(iri)) == iri`` holds.

Results computed on a miss are memoised per mapper (bounded, so attacker-chosen names cannot grow memory
without end).

Entity helpers rewrite only names: the entity's attribute names, its ``type`` value(s), sub-attribute names
at any depth, and the term-valued members ``vocab``/``objectType``; NGSI-LD's own members (``id``, ``type``,
``value``, ``object``, ``observedAt``, ``unitCode``, ``datasetId``…) are core terms, which a user context
cannot redefine, so they stay as they are. Values (including GeoJSON and JSON objects) are never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from cityhub.domains.context.jsonld.errors import ContextRequestError
from cityhub.domains.context.jsonld.processing import expand_compact_or_vocab

if TYPE_CHECKING:
    from cityhub.domains.context.jsonld.resolver import ResolvedContext

ENTITY_MEMBERS = frozenset({"id", "@id", "type", "@type", "scope", "createdAt", "modifiedAt", "deletedAt"})
"""Entity members that are not attributes (``@context`` is dropped by the helpers); ``scope`` is one although
the core context gives it an IRI."""

ATTRIBUTE_MEMBERS = frozenset(
    {
        "type",
        "value",
        "object",
        "objectList",
        "observedAt",
        "unitCode",
        "datasetId",
        "createdAt",
        "modifiedAt",
        "deletedAt",
        "instanceId",
        "languageMap",
        "json",
        "valueList",
        "previousValue",
        "previousObject",
        "previousObjectList",
        "previousLanguageMap",
        "previousJson",
        "previousValueList",
    }
)
"""Members of a Property/Relationship/GeoProperty/… that are not sub-attributes and keep their value."""

TERM_VALUED_MEMBERS = frozenset({"vocab", "previousVocab", "objectType"})
"""Members whose values are terms themselves (VocabProperty values, a Relationship's object type)."""

_TYPE_KEYS = frozenset({"type", "@type"})
_GEOMETRY_TYPES = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon", "GeometryCollection"}
)

NameMap = Callable[[str], str]


class TermMapper:
    """Expands terms to IRIs and compacts IRIs to terms for one resolved context; shared across threads."""

    def __init__(self, context: ResolvedContext, cache_limit: int = 10_000) -> None:
        self.context = context
        self.vocab = context.vocab
        self._terms = context.terms
        self._cache_limit = cache_limit
        self._expanded: dict[str, str] = {}
        self._compacted: dict[str, str] = {}
        self._prefixes = tuple(
            sorted(
                (term, definition.iri)
                for term, definition in context.terms.items()
                if definition.prefix and definition.iri is not None
            )
        )
        self._seed()

    def _seed(self) -> None:
        """Every defined term and, per IRI, its preferred term: the common cases never compute anything."""
        for term, definition in self._terms.items():
            if definition.iri is None or definition.reverse:
                continue
            self._expanded[term] = definition.iri
            current = self._compacted.get(definition.iri)
            if current is None or (len(term), term) < (len(current), current):
                self._compacted[definition.iri] = term

    # -- names ------------------------------------------------------------------------------------------

    def expand_term(self, term: str) -> str:
        """The IRI of an attribute name or type (term, compact IRI, absolute IRI or @vocab-relative name).

        Keywords and anything else starting with ``@`` come back unchanged.
        """
        iri = self._expanded.get(term)
        if iri is None:
            iri = term if term.startswith("@") else expand_compact_or_vocab(self._terms, self.vocab, term)
            self._remember(self._expanded, term, iri)
        return iri

    def compact_iri(self, iri: str) -> str:
        """The shortest name expanding back to ``iri`` here (term, vocab-relative name, compact IRI)."""
        term = self._compacted.get(iri)
        if term is None:
            term = self._compact(iri)
            self._remember(self._compacted, iri, term)
        return term

    def _compact(self, iri: str) -> str:
        vocab = self.vocab
        if vocab is not None and len(iri) > len(vocab) and iri.startswith(vocab):
            suffix = iri[len(vocab) :]
            if self.expand_term(suffix) == iri:
                return suffix
        candidates = [
            f"{prefix}:{iri[len(prefix_iri) :]}"
            for prefix, prefix_iri in self._prefixes
            if len(iri) > len(prefix_iri) and iri.startswith(prefix_iri)
        ]
        valid = [candidate for candidate in candidates if self.expand_term(candidate) == iri]
        return min(valid, key=lambda candidate: (len(candidate), candidate)) if valid else iri

    def _remember(self, cache: dict[str, str], key: str, value: str) -> None:
        if len(cache) < self._cache_limit:
            cache[key] = value

    # -- entities ---------------------------------------------------------------------------------------

    def expand_entity(self, entity: Mapping[str, Any], *, key_values: bool = False) -> dict[str, Any]:
        """The entity with IRIs for attribute names, types and sub-attribute names; ``@context`` removed.

        ``key_values``: the body is in keyValues form, so attribute values are plain values, left untouched.
        Raises ContextRequestError (BadRequestData) when two names expand to the same IRI.
        """
        return self._entity(entity, self.expand_term, key_values)

    def compact_entity(self, entity: Mapping[str, Any], *, key_values: bool = False) -> dict[str, Any]:
        """The inverse of ``expand_entity`` for this context (the requester's, on output)."""
        return self._entity(entity, self.compact_iri, key_values)

    def expand_attribute(self, attribute: Any) -> Any:
        """One attribute's value (a Property/Relationship object, or a list of dataset instances)."""
        return self._attribute(attribute, self.expand_term)

    def compact_attribute(self, attribute: Any) -> Any:
        return self._attribute(attribute, self.compact_iri)

    def _entity(self, entity: Mapping[str, Any], name: NameMap, key_values: bool) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in entity.items():
            if key == "@context":
                continue
            if key in _TYPE_KEYS:
                result[key] = _map_names(value, name)
            elif key in ENTITY_MEMBERS:
                result[key] = value
            else:
                mapped = name(key)
                if mapped in result:
                    raise ContextRequestError(f"attribute {key!r} is given twice (both names mean {mapped})")
                result[mapped] = value if key_values else self._attribute(value, name)
        return result

    def _attribute(self, value: Any, name: NameMap) -> Any:
        if isinstance(value, list):
            return [self._attribute(item, name) if isinstance(item, dict) else item for item in value]
        if not isinstance(value, dict) or _is_geometry(value):
            return value
        result: dict[str, Any] = {}
        for key, member in value.items():
            if key in TERM_VALUED_MEMBERS:
                result[key] = _map_names(member, name)
            elif key == "entity" and isinstance(member, dict):
                result[key] = self._entity(member, name, False)
            elif key in ATTRIBUTE_MEMBERS:
                result[key] = member
            else:
                result[name(key)] = self._attribute(member, name)
        return result


def _map_names(value: Any, name: NameMap) -> Any:
    if isinstance(value, str):
        return name(value)
    if isinstance(value, list):
        return [name(item) if isinstance(item, str) else item for item in value]
    return value


def _is_geometry(value: dict[str, Any]) -> bool:
    """A GeoJSON geometry given directly (concise GeoProperty): a value, not sub-attributes."""
    return value.get("type") in _GEOMETRY_TYPES and ("coordinates" in value or "geometries" in value)
