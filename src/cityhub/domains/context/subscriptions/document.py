"""The Subscription resource (GS CIM 009 clauses 5.2.12 and 5.2.14): validation, merge and rendering.

A subscription is stored as the request's JSON with its names expanded by the request's @context: entity
types, ``watchedAttributes`` and ``notification.attributes`` become IRIs. ``q`` and ``geoQ`` stay as written,
and ``terms`` records how every name they use expands, so that matching evaluates the query without
resolving the @context again. The @context itself is kept beside (``Subscription.context``) to compact the
notifications and the subscription on ``GET``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cityhub.domains.context.errors import BadRequestData
from cityhub.domains.context.jsonld import TermMapper
from cityhub.domains.context.query.geoquery import from_geoq
from cityhub.domains.context.query.qlang import And, Comparison, Exists, Expr, LinkedPath, Or, parse
from cityhub.domains.context.service.query import compile_pattern
from cityhub.domains.context.store.document import check_name, is_uri, parse_datetime, timestamp
from cityhub.kernel.db import utcnow
from cityhub.kernel.outbound import BlockedAddress, check_host
from cityhub.kernel.settings import get_settings

SUBSCRIPTION = "Subscription"
ID_PREFIX = "urn:ngsi-ld:Subscription:"
FORMATS = ("normalized", "keyValues", "concise")
ACCEPTS = ("application/json", "application/ld+json")
HTTP_SCHEMES = ("http", "https")
MQTT_SCHEMES = ("mqtt", "mqtts")
TRIGGERS = (
    "entityCreated",
    "entityUpdated",
    "entityDeleted",
    "attributeCreated",
    "attributeUpdated",
    "attributeDeleted",
)
DEFAULT_TRIGGERS = ("entityCreated", "entityUpdated", "attributeCreated", "attributeUpdated")
TOP_LEVEL = frozenset(
    {
        "id",
        "type",
        "subscriptionName",
        "description",
        "entities",
        "watchedAttributes",
        "notificationTrigger",
        "timeInterval",
        "q",
        "geoQ",
        "scopeQ",
        "csf",
        "isActive",
        "notification",
        "expiresAt",
        "throttling",
        "lang",
        "jsonldContext",
        "temporalQ",
        "@context",
    }
)
# Members the broker keeps and shows; a client may send them back (e.g. a GET result) but never sets them.
STATUS_MEMBERS = frozenset(
    {"status", "timesSent", "timesFailed", "lastNotification", "lastSuccess", "lastFailure"}
)
TERMS = "terms"


@dataclass(frozen=True)
class SubscriptionInput:
    """A validated subscription: the stored document and the columns derived from it."""

    subscription_id: str
    document: dict[str, Any]
    is_active: bool
    expires_at: datetime | None


def new_subscription_id() -> str:
    return f"{ID_PREFIX}{uuid.uuid4()}"


def parse_subscription(body: Any, mapper: TermMapper, *, creating: bool = True) -> SubscriptionInput:
    """Validate a whole subscription in the request's terms; its stored (expanded) form."""
    if not isinstance(body, Mapping):
        raise BadRequestData("a subscription must be a JSON object")
    unknown = set(body) - TOP_LEVEL - STATUS_MEMBERS
    if unknown:
        raise BadRequestData(f"unknown subscription members: {', '.join(sorted(unknown))}")
    subscription_id = body.get("id") or new_subscription_id()
    if not is_uri(subscription_id):
        raise BadRequestData(f"a subscription id must be a URI, not {subscription_id!r}")
    if body.get("type", SUBSCRIPTION) != SUBSCRIPTION:
        raise BadRequestData('a subscription\'s type must be "Subscription"')
    document: dict[str, Any] = {"id": subscription_id, "type": SUBSCRIPTION}
    for member in ("subscriptionName", "description", "lang"):
        if member in body:
            document[member] = _text(body, member)
    if "entities" in body:
        document["entities"] = [_selector(item, mapper) for item in _list(body, "entities")]
    if "watchedAttributes" in body:
        document["watchedAttributes"] = _names(body, "watchedAttributes", mapper)
    if "notificationTrigger" in body:
        document["notificationTrigger"] = _triggers(body)
    terms: dict[str, str] = {}
    if "q" in body:
        document["q"] = _text(body, "q")
        terms.update((name, mapper.expand_term(name)) for name in query_names(parse(document["q"])))
    if "geoQ" in body:
        document["geoQ"] = _geoq(body["geoQ"], mapper, terms)
    if "scopeQ" in body:
        document["scopeQ"] = _text(body, "scopeQ")
    if terms:
        document[TERMS] = terms
    for member in ("throttling", "timeInterval"):
        if member in body:
            document[member] = _positive(body, member)
    if "jsonldContext" in body:
        if not is_uri(body["jsonldContext"]):
            raise BadRequestData("jsonldContext must be the URL of an @context")
        document["jsonldContext"] = body["jsonldContext"]
    _check_combinations(document)
    document["notification"] = _notification(body.get("notification"), mapper)
    is_active = body.get("isActive", True)
    if not isinstance(is_active, bool):
        raise BadRequestData("isActive must be true or false")
    document["isActive"] = is_active
    expires_at = None
    if body.get("expiresAt") is not None:
        expires_at = parse_datetime(body["expiresAt"], "expiresAt")
        if creating and expires_at <= utcnow():
            raise BadRequestData("expiresAt is in the past")
        document["expiresAt"] = timestamp(expires_at)
    return SubscriptionInput(subscription_id, document, is_active, expires_at)


def merge_fragment(current: Mapping[str, Any], fragment: Any, mapper: TermMapper) -> dict[str, Any]:
    """PATCH /subscriptions/{id} (clause 5.8.2): the compacted subscription with the fragment's members
    replacing its own (``notification`` merged member by member; ``null`` removes a member)."""
    if not isinstance(fragment, Mapping):
        raise BadRequestData("a subscription fragment must be a JSON object")
    if fragment.get("id", current["id"]) != current["id"]:
        raise BadRequestData("a subscription's id cannot change")
    merged = compact_subscription(current, mapper)
    for key, value in fragment.items():
        if key == "@context" or key in STATUS_MEMBERS:
            continue
        if key == "notification" and isinstance(value, Mapping):
            merged["notification"] = {**merged["notification"], **value}
        elif value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def compact_subscription(document: Mapping[str, Any], mapper: TermMapper) -> dict[str, Any]:
    """The stored subscription in the terms of ``mapper`` (without status and private members)."""
    shown = {key: value for key, value in document.items() if key != TERMS}
    if "entities" in shown:
        shown["entities"] = [
            {**selector, "type": mapper.compact_iri(selector["type"])} for selector in shown["entities"]
        ]
    if "watchedAttributes" in shown:
        shown["watchedAttributes"] = [mapper.compact_iri(name) for name in shown["watchedAttributes"]]
    notification = dict(shown["notification"])
    if "attributes" in notification:
        notification["attributes"] = [mapper.compact_iri(name) for name in notification["attributes"]]
    shown["notification"] = notification
    return shown


def query_names(expr: Expr) -> Iterator[str]:
    """Every attribute, sub-attribute and entity-type name a query uses (the evaluator resolves each)."""
    match expr:
        case And(terms) | Or(terms):
            for term in terms:
                yield from query_names(term)
        case Exists(path) | Comparison(path):
            yield from _path_names(path)


def _path_names(path: Any) -> Iterator[str]:
    if isinstance(path, LinkedPath):
        yield path.relationship
        yield from path.entity_types
        yield from _path_names(path.target)
    else:
        yield from path.names


# -- members -----------------------------------------------------------------------------------------------


def _text(body: Mapping[str, Any], member: str) -> str:
    value = body[member]
    if not isinstance(value, str) or not value:
        raise BadRequestData(f"{member} must be a non-empty string")
    return value


def _list(body: Mapping[str, Any], member: str) -> list[Any]:
    value = body[member]
    if not isinstance(value, list) or not value:
        raise BadRequestData(f"{member} must be a non-empty array")
    return value


def _names(body: Mapping[str, Any], member: str, mapper: TermMapper) -> list[str]:
    names = _list(body, member)
    if not all(isinstance(name, str) and name for name in names):
        raise BadRequestData(f"{member} must be an array of attribute names")
    expanded = [mapper.expand_term(name) for name in names]
    for iri in expanded:
        check_name(iri)
    return list(dict.fromkeys(expanded))


def _positive(body: Mapping[str, Any], member: str) -> float | int:
    value = body[member]
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise BadRequestData(f"{member} must be a number of seconds above 0")
    return value


def _selector(item: Any, mapper: TermMapper) -> dict[str, str]:
    """An EntitySelector (clause 5.2.33): ``type`` and optionally ``id`` or ``idPattern``."""
    if not isinstance(item, Mapping) or set(item) - {"id", "idPattern", "type"}:
        raise BadRequestData("each entities item is an object with type and optionally id or idPattern")
    if not isinstance(item.get("type"), str) or not item["type"]:
        raise BadRequestData("each entities item needs a type")
    selector = {"type": mapper.expand_term(item["type"])}
    check_name(selector["type"])
    if "id" in item:
        if not is_uri(item["id"]):
            raise BadRequestData(f"entities: id must be a URI, not {item['id']!r}")
        selector["id"] = item["id"]
    if "idPattern" in item:
        selector["idPattern"] = _pattern(item["idPattern"])
    return selector


def _pattern(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequestData("idPattern must be a regular expression")
    compile_pattern(value)
    return value


def _triggers(body: Mapping[str, Any]) -> list[str]:
    triggers = _list(body, "notificationTrigger")
    unknown = [trigger for trigger in triggers if trigger not in TRIGGERS]
    if unknown:
        raise BadRequestData(f"unknown notificationTrigger values: {unknown}; allowed: {', '.join(TRIGGERS)}")
    return list(dict.fromkeys(triggers))


def _geoq(value: Any, mapper: TermMapper, terms: dict[str, str]) -> dict[str, Any]:
    query = from_geoq(value)
    terms[query.geoproperty] = mapper.expand_term(query.geoproperty)
    return {
        "georel": query.georel_text,
        "geometry": query.geometry,
        "coordinates": value["coordinates"],
        "geoproperty": query.geoproperty,
    }


def _check_combinations(document: Mapping[str, Any]) -> None:
    if "entities" not in document and "watchedAttributes" not in document:
        raise BadRequestData("a subscription needs entities or watchedAttributes")
    if "timeInterval" in document and "watchedAttributes" in document:
        raise BadRequestData("timeInterval and watchedAttributes cannot be combined")
    if "timeInterval" in document and "throttling" in document:
        raise BadRequestData("timeInterval and throttling cannot be combined")
    if "notificationTrigger" in document and "timeInterval" in document:
        raise BadRequestData("timeInterval and notificationTrigger cannot be combined")


def _notification(value: Any, mapper: TermMapper) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise BadRequestData("a subscription needs notification with an endpoint")
    unknown = set(value) - {"attributes", "format", "endpoint", "sysAttrs", "showChanges"} - STATUS_MEMBERS
    if unknown:
        raise BadRequestData(f"unknown notification members: {', '.join(sorted(unknown))}")
    notification: dict[str, Any] = {"format": value.get("format", "normalized")}
    if notification["format"] not in FORMATS:
        raise BadRequestData(f"notification.format must be one of {', '.join(FORMATS)}")
    if "attributes" in value:
        notification["attributes"] = _names(value, "attributes", mapper)
    for member in ("sysAttrs", "showChanges"):
        if member in value:
            if not isinstance(value[member], bool):
                raise BadRequestData(f"notification.{member} must be true or false")
            notification[member] = value[member]
    notification["endpoint"] = _endpoint(value.get("endpoint"))
    return notification


def masked_uri(uri: str) -> str:
    """The endpoint URI as shown back (API, console): a password in it replaced by ``****``."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":****@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _endpoint(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not isinstance(value.get("uri"), str):
        raise BadRequestData("notification.endpoint needs a uri")
    unknown = set(value) - {"uri", "accept", "receiverInfo", "notifierInfo", "timeout", "cooldown"}
    if unknown:
        raise BadRequestData(f"unknown endpoint members: {', '.join(sorted(unknown))}")
    uri = value["uri"]
    parts = urlsplit(uri)
    if parts.scheme not in HTTP_SCHEMES + MQTT_SCHEMES or not parts.hostname:
        raise BadRequestData("endpoint uri must be http(s)://host/... or mqtt(s)://host[:port]/topic")
    try:
        check_host(parts.hostname, None, get_settings().outbound_blocked_networks)
    except BlockedAddress as exc:
        raise BadRequestData(f"endpoint uri: {exc}") from None
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise BadRequestData(f"endpoint uri has an invalid port: {uri!r}") from None
    if parts.scheme in MQTT_SCHEMES and not parts.path.strip("/"):
        raise BadRequestData("an mqtt endpoint uri needs a topic: mqtt://host[:port]/topic")
    endpoint: dict[str, Any] = {"uri": uri, "accept": value.get("accept", "application/json")}
    if endpoint["accept"] not in ACCEPTS:
        raise BadRequestData(f"endpoint accept must be one of {', '.join(ACCEPTS)}")
    for member in ("receiverInfo", "notifierInfo"):
        if member in value:
            endpoint[member] = _key_values(value[member], member)
    return endpoint


def _key_values(value: Any, member: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not all(
        isinstance(item, Mapping)
        and set(item) == {"key", "value"}
        and isinstance(item["key"], str)
        and isinstance(item["value"], str)
        for item in value
    ):
        raise BadRequestData(f"endpoint {member} must be an array of {{key, value}} strings")
    return [{"key": item["key"], "value": item["value"]} for item in value]
