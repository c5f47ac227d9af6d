"""Entity documents: NGSI-LD input (normalized or concise, already expanded) to the stored form and back.

Stored form (see ``models``): ``{attribute IRI: [instance, ...]}`` where each instance is a normalized
attribute (``type`` plus its value member, ``observedAt``, ``unitCode``, ``datasetId``, sub-attributes by IRI)
carrying ``createdAt``/``modifiedAt``. The default instance has no ``datasetId``; at most one instance per
datasetId exists.

Concise input (clause 4.5.2 / 5.2.x, GS CIM 009 ≥ 1.6) is recognised by the members present: ``object`` makes
a Relationship, ``languageMap`` a LanguageProperty, ``vocab`` a VocabProperty, ``json`` a JsonProperty,
``valueList``/``objectList`` the list types, a GeoJSON geometry a GeoProperty, ``value`` or a plain JSON
value a Property.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cityhub.domains.context.errors import BadRequestData
from cityhub.domains.context.query.geoquery import is_geometry

CORE = "https://uri.etsi.org/ngsi-ld/"
NULL = "urn:ngsi-ld:null"
LOCATION = CORE + "location"
GEO_ATTRIBUTES = frozenset({LOCATION, CORE + "observationSpace", CORE + "operationSpace"})

PROPERTY = "Property"
RELATIONSHIP = "Relationship"
GEOPROPERTY = "GeoProperty"
LANGUAGE_PROPERTY = "LanguageProperty"
VOCAB_PROPERTY = "VocabProperty"
JSON_PROPERTY = "JsonProperty"
LIST_PROPERTY = "ListProperty"
LIST_RELATIONSHIP = "ListRelationship"

VALUE_MEMBER = {
    PROPERTY: "value",
    GEOPROPERTY: "value",
    RELATIONSHIP: "object",
    LANGUAGE_PROPERTY: "languageMap",
    VOCAB_PROPERTY: "vocab",
    JSON_PROPERTY: "json",
    LIST_PROPERTY: "valueList",
    LIST_RELATIONSHIP: "objectList",
}
ATTRIBUTE_TYPES = frozenset(VALUE_MEMBER)
SYSTEM_MEMBERS = ("createdAt", "modifiedAt", "deletedAt", "instanceId")
METADATA = frozenset({"observedAt", "unitCode", "datasetId"})
STRUCTURAL = frozenset({"type", *VALUE_MEMBER.values(), *METADATA, *SYSTEM_MEMBERS, "objectType"})
RESERVED_NAMES = frozenset({"id", "@id", "type", "@type", "@context", "scope", *SYSTEM_MEMBERS})

_FORBIDDEN_NAME = re.compile(r"[<>\"'=;()\s\x00-\x1f]")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")
_CONCISE_MARKERS = (
    ("object", RELATIONSHIP),
    ("objectList", LIST_RELATIONSHIP),
    ("languageMap", LANGUAGE_PROPERTY),
    ("vocab", VOCAB_PROPERTY),
    ("json", JSON_PROPERTY),
    ("valueList", LIST_PROPERTY),
    ("value", PROPERTY),
)

Instance = dict[str, Any]
Attributes = dict[str, list[Instance]]


def timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``, the form every NGSI-LD system attribute uses."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_datetime(value: Any, what: str) -> datetime:
    """An ISO 8601 date-time (``Z`` or an offset; no zone means UTC), or BadRequestData."""
    if not isinstance(value, str):
        raise BadRequestData(f"{what} must be an ISO 8601 date-time string")
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise BadRequestData(f"{what} is not an ISO 8601 date-time: {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def is_uri(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 512 and _SCHEME.match(value) is not None


def check_entity_id(value: Any) -> str:
    if not is_uri(value):
        raise BadRequestData(f"an entity id must be a URI (e.g. urn:ngsi-ld:Type:1), not {value!r}")
    return str(value)


def check_name(iri: str) -> None:
    if not iri or _FORBIDDEN_NAME.search(iri) or len(iri) > 512:
        raise BadRequestData(f"invalid attribute or type name: {iri!r}")


@dataclass
class EntityInput:
    """A validated entity from a request: expanded names, attributes as instance lists (no system members)."""

    entity_id: str
    types: list[str]
    scopes: list[str] | None
    attrs: Attributes = field(default_factory=dict)


def parse_types(value: Any) -> list[str]:
    types = value if isinstance(value, list) else [value]
    if not types or not all(isinstance(item, str) and item for item in types):
        raise BadRequestData("an entity type must be a name or a non-empty list of names")
    for item in types:
        check_name(item)
    return list(dict.fromkeys(types))


def parse_scopes(value: Any) -> list[str] | None:
    if value is None:
        return None
    scopes = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str) and item.startswith("/") and " " not in item for item in scopes):
        raise BadRequestData("scope must be a path like /Madrid/Gardens or a list of them")
    return list(dict.fromkeys(scopes))


def parse_entity(expanded: Mapping[str, Any], *, require_type: bool = True) -> EntityInput:
    """Validate an entity body already expanded with the request's @context."""
    if not isinstance(expanded, Mapping):
        raise BadRequestData("an entity must be a JSON object")
    entity_id = check_entity_id(expanded.get("id", expanded.get("@id")))
    raw_type = expanded.get("type", expanded.get("@type"))
    if raw_type is None and require_type:
        raise BadRequestData(f"entity {entity_id} has no type")
    types = parse_types(raw_type) if raw_type is not None else []
    scopes = parse_scopes(expanded.get("scope"))
    return EntityInput(entity_id, types, scopes, parse_attributes(expanded))


def parse_attributes(expanded: Mapping[str, Any], *, allow_null: bool = False) -> Attributes:
    """The attributes of an expanded fragment (entity members are skipped). ``allow_null``: a merge, where
    ``urn:ngsi-ld:null`` (or JSON null) asks to delete; such attributes come back as empty lists."""
    attrs: Attributes = {}
    for name, value in expanded.items():
        if name in RESERVED_NAMES:
            continue
        check_name(name)
        attrs[name] = parse_attribute(name, value, allow_null=allow_null)
    return attrs


def parse_attribute(name: str, value: Any, *, allow_null: bool = False) -> list[Instance]:
    """One attribute's instances; ``[]`` when ``allow_null`` and the value asks to delete the attribute."""
    if value is None or value == NULL:
        if allow_null:
            return []
        raise BadRequestData(f"attribute {name} has no value")
    if isinstance(value, list) and value and all(_is_instance_object(item) for item in value):
        instances = [_instance(name, item) for item in value]
        _check_unique_datasets(name, instances)
        return instances
    return [_instance(name, value)]


def _is_instance_object(item: Any) -> bool:
    return isinstance(item, Mapping) and (
        item.get("type") in ATTRIBUTE_TYPES or any(marker in item for marker, _kind in _CONCISE_MARKERS)
    )


def _check_unique_datasets(name: str, instances: Iterable[Instance]) -> None:
    seen: set[str | None] = set()
    for instance in instances:
        dataset = instance.get("datasetId")
        if dataset in seen:
            label = "the default instance" if dataset is None else f"datasetId {dataset}"
            raise BadRequestData(f"attribute {name} gives {label} twice")
        seen.add(dataset)


def _instance(name: str, value: Any) -> Instance:
    kind, body = _kind_of(value)
    if name in GEO_ATTRIBUTES and kind != GEOPROPERTY:
        raise BadRequestData(f"attribute {name} must be a GeoProperty")
    member = VALUE_MEMBER[kind]
    instance: Instance = {"type": kind}
    if member not in body or body[member] is None:
        raise BadRequestData(f"attribute {name} ({kind}) needs a non-null {member!r}")
    instance[member] = _checked_value(name, kind, body[member])
    for key, item in body.items():
        if key in ("type", member) or key in SYSTEM_MEMBERS:
            continue
        if key in METADATA:
            instance[key] = _checked_metadata(name, key, item)
        elif key == "objectType" and kind in (RELATIONSHIP, LIST_RELATIONSHIP):
            instance[key] = item
        elif key in STRUCTURAL:
            raise BadRequestData(f"attribute {name} ({kind}) cannot have {key!r}")
        else:
            check_name(key)
            sub = parse_attribute(key, item)
            if len(sub) != 1:
                raise BadRequestData(f"sub-attribute {key} of {name} must have a single instance")
            instance[key] = sub[0]
    return instance


def _kind_of(value: Any) -> tuple[str, Mapping[str, Any]]:
    if isinstance(value, Mapping):
        declared = value.get("type")
        if declared in ATTRIBUTE_TYPES:
            return str(declared), value
        if is_geometry(value):
            return GEOPROPERTY, {"value": value}
        for marker, kind in _CONCISE_MARKERS:
            if marker in value:
                if kind == PROPERTY and is_geometry(value["value"]):
                    return GEOPROPERTY, value
                return kind, value
        if declared is not None and isinstance(declared, str) and declared[:1].isupper():
            raise BadRequestData(f"unknown attribute type {declared!r}")
        return PROPERTY, {"value": dict(value)}
    return PROPERTY, {"value": value}


def _checked_value(name: str, kind: str, value: Any) -> Any:
    if kind == PROPERTY:
        if isinstance(value, float) and not math.isfinite(value):
            raise BadRequestData(f"attribute {name} has a non-finite number")
        return value
    if kind == GEOPROPERTY:
        if not is_geometry(value):
            raise BadRequestData(f"attribute {name} is not a valid GeoJSON geometry")
        return value
    if kind == RELATIONSHIP:
        targets = value if isinstance(value, list) else [value]
        if not targets or not all(is_uri(target) for target in targets):
            raise BadRequestData(f"relationship {name} must point to a URI (or a list of URIs)")
        return value
    if kind == LANGUAGE_PROPERTY:
        if (
            not isinstance(value, Mapping)
            or not value
            or not all(_is_language_text(v) for v in value.values())
        ):
            raise BadRequestData(f"attribute {name} needs a languageMap of language tags to strings")
        return dict(value)
    if kind == VOCAB_PROPERTY:
        vocab = value if isinstance(value, list) else [value]
        if not vocab or not all(isinstance(item, str) and item for item in vocab):
            raise BadRequestData(f"attribute {name} needs a vocab name or a list of names")
        return value
    if kind in (LIST_PROPERTY, LIST_RELATIONSHIP):
        if not isinstance(value, list):
            raise BadRequestData(f"attribute {name} ({kind}) needs a JSON array")
        return value
    return value  # JsonProperty: any JSON


def _is_language_text(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def _checked_metadata(name: str, key: str, value: Any) -> Any:
    if key == "observedAt":
        parse_datetime(value, f"observedAt of {name}")
        return value
    if key == "unitCode":
        if not isinstance(value, str) or not value:
            raise BadRequestData(f"unitCode of {name} must be a string")
        return value
    if not is_uri(value):
        raise BadRequestData(f"datasetId of {name} must be a URI")
    return value


# -- changes to a stored document --------------------------------------------------------------------------


def stamped(instance: Instance, now: str, created: str | None = None) -> Instance:
    """The instance with its system timestamps (``created`` keeps an earlier creation time)."""
    result = dict(instance)
    result["createdAt"] = created or now
    result["modifiedAt"] = now
    return result


def find_instance(instances: list[Instance], dataset_id: str | None) -> int | None:
    for index, instance in enumerate(instances):
        if instance.get("datasetId") == dataset_id:
            return index
    return None


@dataclass
class AttributeChanges:
    """What one operation did to a document: written instances by attribute, deletions, refusals."""

    written: dict[str, list[Instance]] = field(default_factory=dict)
    deleted: dict[str, list[Instance]] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> set[str]:
        return set(self.written) | set(self.deleted)

    def __bool__(self) -> bool:
        return bool(self.written or self.deleted)


def put_instances(
    attrs: Attributes, new: Attributes, now: str, *, overwrite: bool = True, only_existing: bool = False
) -> AttributeChanges:
    """Append (``overwrite`` False: keep existing instances) or update (``only_existing``) attributes."""
    changes = AttributeChanges()
    for name, instances in new.items():
        current = attrs.get(name)
        if only_existing and current is None:
            changes.refused[name] = "the attribute does not exist"
            continue
        target = list(current or [])
        for instance in instances:
            index = find_instance(target, instance.get("datasetId"))
            if index is None:
                if only_existing:
                    changes.refused[name] = "the attribute has no instance with that datasetId"
                    continue
                target.append(stamped(instance, now))
            elif not overwrite:
                changes.refused[name] = "the attribute exists and noOverwrite was asked"
                continue
            else:
                target[index] = stamped(instance, now, target[index].get("createdAt"))
            changes.written.setdefault(name, []).append(target[-1] if index is None else target[index])
        if name in changes.written:
            attrs[name] = target
    return changes


def merge_instance(current: Instance, fragment: Mapping[str, Any], name: str, now: str) -> Instance:
    """A partial update of one instance (clause 5.6.4 / merge): given members replace, nulls delete."""
    kind = current.get("type")
    declared = fragment.get("type")
    if declared is not None and declared != kind:
        raise BadRequestData(f"attribute {name} is a {kind}; a partial update cannot make it a {declared}")
    member = VALUE_MEMBER[str(kind)]
    merged = dict(current)
    for key, item in fragment.items():
        if key in ("type", "datasetId") or key in SYSTEM_MEMBERS:
            continue
        if item is None or item == NULL:
            if key == member:
                raise BadRequestData(f"the {member} of {name} cannot be removed by a partial update")
            merged.pop(key, None)
        elif key == member:
            merged[key] = _checked_value(name, str(kind), item)
        elif key in METADATA:
            merged[key] = _checked_metadata(name, key, item)
        elif key == "objectType":
            merged[key] = item
        else:
            check_name(key)
            merged[key] = parse_attribute(key, item)[0]
    if merged.get("type") == PROPERTY and is_geometry(merged.get("value")) and name in GEO_ATTRIBUTES:
        merged["type"] = GEOPROPERTY
    return stamped(merged, now, current.get("createdAt"))


def fragment_of(value: Any) -> dict[str, Any]:
    """A partial-update fragment in normalized members (concise ``{"value": 1}`` and plain values too)."""
    if isinstance(value, Mapping):
        if value.get("type") in ATTRIBUTE_TYPES or any(m in value for m, _k in _CONCISE_MARKERS):
            return dict(value)
        if is_geometry(value):
            return {"value": value}
        return {"value": dict(value)} if "type" not in value else dict(value)
    return {"value": value}


# -- output ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderOptions:
    """How an entity is shown: the format, system attributes, a projection by attribute IRI, a language."""

    format: str = "normalized"  # normalized | keyValues | concise
    sys_attrs: bool = False
    attrs: frozenset[str] | None = None
    lang: str | None = None


def render(
    entity_id: str,
    types: list[str],
    scopes: list[str] | None,
    attrs: Attributes,
    created_at: str | None,
    modified_at: str | None,
    options: RenderOptions,
) -> dict[str, Any]:
    """An entity in expanded names, in the asked format (the caller compacts names with the requester's
    @context)."""
    result: dict[str, Any] = {"id": entity_id, "type": types[0] if len(types) == 1 else list(types)}
    if scopes:
        result["scope"] = scopes[0] if len(scopes) == 1 else list(scopes)
    for name, instances in attrs.items():
        if options.attrs is not None and name not in options.attrs:
            continue
        shown = [_render_instance(instance, options) for instance in instances]
        if shown:
            result[name] = shown[0] if len(shown) == 1 else shown
    if options.sys_attrs and options.format != "keyValues":
        if created_at:
            result["createdAt"] = created_at
        if modified_at:
            result["modifiedAt"] = modified_at
    return result


def _render_instance(instance: Instance, options: RenderOptions) -> Any:
    kind = instance.get("type", PROPERTY)
    member = VALUE_MEMBER.get(kind, "value")
    if options.format == "keyValues":
        return _key_value(instance, kind, member, options.lang)
    shown: dict[str, Any] = {}
    for key, item in instance.items():
        if key in ("createdAt", "modifiedAt") and not options.sys_attrs:
            continue
        if isinstance(item, dict) and key not in STRUCTURAL and "type" in item:
            shown[key] = _render_instance(item, options)
        else:
            shown[key] = item
    if kind == LANGUAGE_PROPERTY and options.lang is not None:
        shown = _with_language(shown, options.lang)
        kind, member = PROPERTY, "value"
    if options.format == "concise":
        return _concise(shown, kind, member)
    return shown


def _key_value(instance: Instance, kind: str, member: str, lang: str | None) -> Any:
    value = instance.get(member)
    if kind == LANGUAGE_PROPERTY:
        return _pick_language(value or {}, lang) if lang is not None else {"languageMap": value}
    if kind in (VOCAB_PROPERTY, JSON_PROPERTY, LIST_PROPERTY, LIST_RELATIONSHIP) and kind != PROPERTY:
        return {member: value}
    return value


def _with_language(shown: dict[str, Any], lang: str) -> dict[str, Any]:
    language_map = shown.pop("languageMap", {})
    shown["type"] = PROPERTY
    shown["value"] = _pick_language(language_map, lang)
    chosen = lang if lang in language_map else next(iter(language_map), None)
    if chosen:
        shown["lang"] = chosen
    return shown


def _pick_language(language_map: Mapping[str, Any], lang: str) -> Any:
    if lang in language_map:
        return language_map[lang]
    if "@none" in language_map:
        return language_map["@none"]
    return next(iter(language_map.values()), None)


def _concise(shown: dict[str, Any], kind: str, member: str) -> Any:
    """Drop what can be inferred: the type always, the wrapper when nothing but the value is left."""
    shown.pop("type", None)
    if kind in (PROPERTY, GEOPROPERTY) and set(shown) == {"value"}:
        value = shown["value"]
        if kind == GEOPROPERTY or not isinstance(value, dict):
            return value
    return shown


def instance_value_number(instance: Instance) -> float | None:
    """The numeric value of a Property instance (for aggregations), or None."""
    value = instance.get("value")
    if instance.get("type") == PROPERTY and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
