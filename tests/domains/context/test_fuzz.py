"""Never a 500 for bad input: random but plausible-malformed requests to the main NGSI-LD endpoints and the
telemetry path (both databases).

Every answer must be below 500; under ``/ngsi-ld/`` a 4xx must be a JSON body whose ``type`` is an ETSI
error type (clause 5.5.2). The strategies mix well-formed pieces (real ids, attribute shapes, shipped
@contexts) with the malformed ones brokers meet in practice: wrong JSON types, NUL characters, non-finite
numbers, huge integers, broken GeoJSON, invalid dates and durations, bad media types and Link headers.
No strategy names a remote @context URL, so no example waits for the network.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.domains.context.conftest import CORE_LINK, LD, NgsiClient

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
ETSI_TYPES = frozenset(
    ERRORS + name
    for name in (
        "InvalidRequest",
        "BadRequestData",
        "AlreadyExists",
        "OperationNotSupported",
        "ResourceNotFound",
        "TooComplexQuery",
        "TooManyResults",
        "LdContextNotAvailable",
        "NonexistentTenant",
    )
)
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CORE_URL = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
KNOWN_ID = "urn:ngsi-ld:FuzzRoom:1"
KNOWN = {
    "id": KNOWN_ID,
    "type": "FuzzRoom",
    "temperature": {"type": "Property", "value": 21.5, "observedAt": "2026-11-01T10:00:00Z"},
    "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [13.4, 52.5]}},
}

# -- strategies ---------------------------------------------------------------------------------------------

TOKENS = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "urn:ngsi-ld:FuzzRoom:1",
        "urn:ngsi-ld:FuzzRoom:2",
        "urn:example:x",
        "not a uri",
        "FuzzRoom",
        "temperature",
        "location",
        "@context",
        "@id",
        "@type",
        "@value",
        "ngsi-ld:x",
        "..",
        "(",
        ")",
        "{",
        "}",
        "[",
        "*",
        ";",
        "|",
        ",",
        "==",
        "~=",
        "-1",
        "0",
        "1e309",
        "-0",
        "NaN",
        "9" * 400,
        "2026-11-01T10:00:00Z",
        "2026-13-45T99:00:00Z",
        "2026-11-01",
        "10:00:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "P1D",
        "PT0S",
        "PT1H",
        "P99999999999Y",
        "Point",
        "Polygon",
        "near;maxDistance==10",
        "near;minDistance==-5",
        "within",
        "[13.4,52.5]",
        "[[[0,0],[1,0],[1,1],[0,0]]]",
        "%",
        "\u00e9",
        "\U0001f600",
        "(a+)+$",
    ]
)
TEXT = st.one_of(TOKENS, st.text(max_size=24), st.lists(TOKENS, min_size=1, max_size=5).map("".join))
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(TEXT, children, max_size=4)),
    max_leaves=10,
)
COORDINATES = st.recursive(NUMBERS, lambda inner: st.lists(inner, max_size=5), max_leaves=12)
GEOMETRY = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["Point", "LineString", "Polygon", "MultiPoint", "MultiPolygon", "Bogus", 3]),
        "coordinates": COORDINATES,
    }
)
ENTITY_IDS_PLAIN = st.text(alphabet="abcXYZ019-_:.", min_size=1, max_size=12).map(
    lambda local: f"urn:ngsi-ld:FuzzRoom:{local}"
)
ATTRIBUTE_TYPES = st.sampled_from(
    [
        "Property",
        "Relationship",
        "GeoProperty",
        "LanguageProperty",
        "ListProperty",
        "ListRelationship",
        "JsonProperty",
        "VocabProperty",
        "Bogus",
        5,
        None,
    ]
)
MEMBER_VALUES = st.one_of(JSON_VALUES, GEOMETRY)
ATTRIBUTE = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries(
        {"type": ATTRIBUTE_TYPES},
        optional={
            "value": MEMBER_VALUES,
            "object": st.one_of(TEXT, JSON_VALUES),
            "objectList": JSON_VALUES,
            "languageMap": JSON_VALUES,
            "valueList": JSON_VALUES,
            "json": JSON_VALUES,
            "vocab": JSON_VALUES,
            "observedAt": st.one_of(TEXT, JSON_VALUES),
            "unitCode": st.one_of(TEXT, JSON_VALUES),
            "datasetId": st.one_of(TEXT, JSON_VALUES),
            "createdAt": TEXT,
            "subProperty": JSON_VALUES,
        },
    ),
)
PLAUSIBLE_ATTRIBUTE = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("Property"), "value": JSON_VALUES},
        optional={
            "observedAt": st.sampled_from(["2026-11-01T10:00:00Z", "2026-11-01T10:00:00.123+02:00", "x"]),
            "unitCode": st.sampled_from(["CEL", "", "x" * 300]),
            "datasetId": st.sampled_from(["urn:ngsi-ld:Dataset:a", "not a uri"]),
        },
    ),
    st.fixed_dictionaries({"type": st.just("Relationship"), "object": st.one_of(ENTITY_IDS_PLAIN, TEXT)}),
    st.fixed_dictionaries({"type": st.just("GeoProperty"), "value": GEOMETRY}),
    st.fixed_dictionaries({"type": st.just("LanguageProperty"), "languageMap": JSON_VALUES}),
    SCALARS,
)
ATTRIBUTE_NAMES = st.one_of(
    st.sampled_from(
        [
            "temperature",
            "location",
            "name",
            "id",
            "type",
            "@context",
            "createdAt",
            "scope",
            "observationSpace",
        ]
    ),
    TEXT,
)
CONTEXTS = st.one_of(
    st.sampled_from(
        [CORE_URL, [CORE_URL], {"x": "urn:example:x"}, {"@vocab": "urn:example:"}, "urn:nope", 5, None, []]
    ),
    st.dictionaries(TEXT, st.one_of(TOKENS, st.dictionaries(TOKENS, TOKENS, max_size=2)), max_size=3),
)
ENTITY_IDS = st.one_of(
    st.sampled_from([KNOWN_ID, "urn:ngsi-ld:FuzzRoom:2"]),
    ENTITY_IDS_PLAIN,
    ENTITY_IDS_PLAIN,
    TEXT,
    JSON_VALUES,
)
ENTITY_TYPES = st.one_of(st.sampled_from(["FuzzRoom", ["FuzzRoom", "Other"], ""]), TEXT, JSON_VALUES)


@st.composite
def entities(draw: st.DrawFn, *, context: bool = True) -> Any:
    """An entity-shaped object (or occasionally no object at all)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON_VALUES)
    entity: dict[str, Any] = {}
    if draw(st.booleans()) or draw(st.booleans()):
        entity["id"] = draw(ENTITY_IDS)
    if draw(st.booleans()) or draw(st.booleans()):
        entity["type"] = draw(ENTITY_TYPES)
    attributes = st.one_of(PLAUSIBLE_ATTRIBUTE, PLAUSIBLE_ATTRIBUTE, ATTRIBUTE)
    entity.update(draw(st.dictionaries(ATTRIBUTE_NAMES, attributes, max_size=4)))
    if context and draw(st.integers(0, 4)) == 0:
        entity["@context"] = draw(CONTEXTS)
    return entity


FRAGMENTS = st.one_of(
    st.dictionaries(ATTRIBUTE_NAMES, st.one_of(PLAUSIBLE_ATTRIBUTE, ATTRIBUTE), max_size=4), JSON_VALUES
)
CONTENT_TYPES = st.sampled_from(
    ["application/json"] * 6 + [LD, "application/json; charset=utf-8", "text/plain", None]
)
ACCEPTS = st.sampled_from(
    [None, "application/json", LD, "application/geo+json", "text/html", "*/*", "x/y;q=a"]
)
LINKS = st.sampled_from(
    [
        *[None] * 6,
        CORE_LINK,
        "garbage",
        f"<{CORE_URL}>",
        '<urn:nope>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"',
        f"{CORE_LINK}, {CORE_LINK}",
    ]
)
TENANTS = st.sampled_from([None] * 8 + ["fuzz", "", "bad/tenant", "x" * 200])


@st.composite
def raw_bodies(draw: st.DrawFn, value: st.SearchStrategy[Any]) -> bytes:
    """JSON text of ``value`` (NaN and Infinity included, as Python's json writes them), or broken bytes."""
    choice = draw(st.integers(0, 14))
    if choice == 0:
        return draw(st.binary(max_size=40))
    if choice == 1:
        return b""
    return json.dumps(draw(value), allow_nan=True).encode()


@st.composite
def headers(draw: st.DrawFn) -> dict[str, str]:
    """Plain JSON two times in three, so that most examples reach the operation itself."""
    if draw(st.integers(0, 2)):
        return {"Content-Type": "application/json"}
    chosen = {
        "Content-Type": draw(CONTENT_TYPES),
        "Accept": draw(ACCEPTS),
        "Link": draw(LINKS),
        "NGSILD-Tenant": draw(TENANTS),
    }
    return {name: value for name, value in chosen.items() if value is not None and _latin1(value)}


def _latin1(value: str) -> bool:
    return all(32 <= ord(char) < 256 and ord(char) != 127 for char in value)


PARAMS = st.one_of(st.none(), TEXT)


# -- checks -------------------------------------------------------------------------------------------------


def _segment(value: Any) -> str:
    return quote(value if isinstance(value, str) else json.dumps(value), safe=":")


def _assert_ngsi_answer(response: Any) -> None:
    """Below 500 with an ETSI error type on 4xx; a 503 only for an @context that cannot be had (5.5.2)."""
    if response.status_code == 503:
        assert response.json()["type"] == ERRORS + "LdContextNotAvailable", response.text
        return
    assert response.status_code < 500, response.text
    if 400 <= response.status_code < 500:
        body = response.json()
        assert body.get("type") in ETSI_TYPES, body


def _send(
    ngsi: NgsiClient,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    header_values: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
) -> Any:
    response = ngsi.request(
        method,
        path,
        content=body,
        headers=header_values or {"Content-Type": "application/json"},
        params={key: value for key, value in (params or {}).items() if value is not None},
    )
    _assert_ngsi_answer(response)
    return response


def _seed(ngsi: NgsiClient) -> None:
    """The entity the id-addressed examples often hit (already there after the first example)."""
    response = ngsi.post("/entities", json=KNOWN)
    assert response.status_code in (201, 409), response.text


# -- entities (clause 5.6) ----------------------------------------------------------------------------------


@FUZZ
@given(body=raw_bodies(entities()), header_values=headers())
def test_create_entity(ngsi: NgsiClient, body: bytes, header_values: dict[str, str]) -> None:
    _send(ngsi, "POST", "/entities", body=body, header_values=header_values)


@FUZZ
@given(
    entity_id=ENTITY_IDS,
    method=st.sampled_from(["PATCH", "POST"]),
    options=st.one_of(st.none(), st.sampled_from(["noOverwrite", "bogus"])),
    body=raw_bodies(FRAGMENTS),
    header_values=headers(),
)
def test_update_or_append_attributes(
    ngsi: NgsiClient,
    entity_id: Any,
    method: str,
    options: str | None,
    body: bytes,
    header_values: dict[str, str],
) -> None:
    _seed(ngsi)
    path = f"/entities/{_segment(entity_id)}/attrs"
    _send(ngsi, method, path, body=body, header_values=header_values, params={"options": options})


@FUZZ
@given(
    entity_id=ENTITY_IDS,
    attr=ATTRIBUTE_NAMES,
    method=st.sampled_from(["PATCH", "PUT"]),
    body=raw_bodies(ATTRIBUTE),
    header_values=headers(),
)
def test_patch_or_replace_one_attribute(
    ngsi: NgsiClient, entity_id: Any, attr: str, method: str, body: bytes, header_values: dict[str, str]
) -> None:
    _seed(ngsi)
    path = f"/entities/{_segment(entity_id)}/attrs/{_segment(attr or 'x')}"
    _send(ngsi, method, path, body=body, header_values=header_values)


@FUZZ
@given(entity_id=ENTITY_IDS, body=raw_bodies(entities()), header_values=headers())
def test_replace_entity(ngsi: NgsiClient, entity_id: Any, body: bytes, header_values: dict[str, str]) -> None:
    _seed(ngsi)
    _send(ngsi, "PUT", f"/entities/{_segment(entity_id)}", body=body, header_values=header_values)


# -- batch operations (clauses 5.6.7-5.6.10) ----------------------------------------------------------------


@FUZZ
@given(
    operation=st.sampled_from(["create", "upsert", "update", "delete"]),
    options=st.one_of(
        st.none(), st.sampled_from(["replace", "update", "noOverwrite", "replace,update", "x"])
    ),
    body=raw_bodies(st.one_of(st.lists(st.one_of(entities(), ENTITY_IDS), max_size=5), JSON_VALUES)),
    header_values=headers(),
)
def test_batch_operations(
    ngsi: NgsiClient, operation: str, options: str | None, body: bytes, header_values: dict[str, str]
) -> None:
    response = _send(
        ngsi,
        "POST",
        f"/entityOperations/{operation}",
        body=body,
        header_values=header_values,
        params={"options": options},
    )
    if response.status_code == 207:
        for failure in response.json()["errors"]:
            assert failure["error"]["type"] in ETSI_TYPES, failure


@st.composite
def query_bodies(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 5)) == 0:
        return draw(JSON_VALUES)
    selector = st.fixed_dictionaries(
        {}, optional={"id": ENTITY_IDS, "idPattern": st.one_of(TEXT, JSON_VALUES), "type": ENTITY_TYPES}
    )
    geo_q = st.fixed_dictionaries(
        {},
        optional={
            "georel": TEXT,
            "geometry": st.one_of(st.sampled_from(["Point", "Polygon"]), TEXT),
            "coordinates": st.one_of(COORDINATES, TEXT),
            "geoproperty": st.one_of(TEXT, JSON_VALUES),
        },
    )
    return draw(
        st.fixed_dictionaries(
            {},
            optional={
                "type": st.sampled_from(["Query", "Bogus", 1]),
                "entities": st.one_of(st.lists(selector, max_size=3), JSON_VALUES),
                "attrs": st.one_of(st.lists(TEXT, max_size=3), JSON_VALUES),
                "q": st.one_of(TEXT, JSON_VALUES),
                "geoQ": st.one_of(geo_q, JSON_VALUES),
                "scopeQ": st.one_of(TEXT, JSON_VALUES),
                "lang": st.one_of(TEXT, JSON_VALUES),
            },
        )
    )


@FUZZ
@given(
    body=raw_bodies(query_bodies()),
    limit=st.one_of(st.none(), st.integers(-5, 2000), TEXT),
    header_values=headers(),
)
def test_post_query(ngsi: NgsiClient, body: bytes, limit: Any, header_values: dict[str, str]) -> None:
    _seed(ngsi)
    _send(
        ngsi,
        "POST",
        "/entityOperations/query",
        body=body,
        header_values=header_values,
        params={"limit": limit},
    )


# -- query (clause 5.7.2) -----------------------------------------------------------------------------------

QUERY_PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.just(KNOWN_ID), TEXT),
        "type": st.one_of(st.just("FuzzRoom"), TEXT),
        "idPattern": st.one_of(st.just("^urn:ngsi-ld:Fuzz"), TEXT),
        "q": st.one_of(st.sampled_from(["temperature>20", "temperature==21.5;name", "location"]), TEXT),
        "georel": TEXT,
        "geometry": st.one_of(st.sampled_from(["Point", "Polygon"]), TEXT),
        "coordinates": TEXT,
        "geoproperty": TEXT,
        "attrs": TEXT,
        "pick": TEXT,
        "scopeQ": TEXT,
        "options": st.one_of(st.sampled_from(["keyValues", "sysAttrs,concise", "count"]), TEXT),
        "format": TEXT,
        "lang": TEXT,
        "limit": st.one_of(st.integers(-5, 2000), TEXT),
        "offset": st.one_of(st.integers(-5, 2000), TEXT),
        "count": st.one_of(st.booleans(), TEXT),
    },
)


@FUZZ
@given(params=QUERY_PARAMS, header_values=headers())
def test_query_entities(ngsi: NgsiClient, params: dict[str, Any], header_values: dict[str, str]) -> None:
    _seed(ngsi)
    header_values.pop("Content-Type", None)
    response = _send(ngsi, "GET", "/entities", header_values=header_values, params=params)
    if response.status_code == 200 and str(params.get("count")).lower() == "true":
        assert int(response.headers["NGSILD-Results-Count"]) >= 0


@FUZZ
@given(
    entity_id=ENTITY_IDS,
    params=st.fixed_dictionaries(
        {}, optional={"attrs": TEXT, "options": TEXT, "type": TEXT, "format": TEXT, "lang": TEXT}
    ),
    header_values=headers(),
)
def test_retrieve_entity(
    ngsi: NgsiClient, entity_id: Any, params: dict[str, Any], header_values: dict[str, str]
) -> None:
    _seed(ngsi)
    _send(ngsi, "GET", f"/entities/{_segment(entity_id)}", header_values=header_values, params=params)


# -- subscriptions (clause 5.8) and stored contexts (clause 5.13) --------------------------------------------


@st.composite
def subscriptions(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 5)) == 0:
        return draw(JSON_VALUES)
    endpoint = st.fixed_dictionaries(
        {
            "uri": st.one_of(
                st.sampled_from(
                    [
                        "http://127.0.0.1:9/notify",
                        "mqtt://127.0.0.1:1/topic",
                        "mqtt://127.0.0.1",
                        "http://[::1",
                        "http://host:99999/x",
                        "ftp://x/y",
                    ]
                ),
                TEXT,
                JSON_VALUES,
            )
        },
        optional={
            "accept": st.one_of(st.sampled_from(["application/json", LD]), TEXT),
            "receiverInfo": JSON_VALUES,
            "notifierInfo": JSON_VALUES,
        },
    )
    notification = st.fixed_dictionaries(
        {"endpoint": st.one_of(endpoint, JSON_VALUES)},
        optional={
            "format": st.one_of(st.sampled_from(["normalized", "keyValues", "concise"]), TEXT),
            "attributes": st.one_of(st.lists(TEXT, max_size=3), JSON_VALUES),
            "sysAttrs": JSON_VALUES,
        },
    )
    return draw(
        st.fixed_dictionaries(
            {"type": st.sampled_from(["Subscription", "Subscription", "Bogus"])},
            optional={
                "id": ENTITY_IDS,
                "entities": st.one_of(
                    st.lists(
                        st.fixed_dictionaries(
                            {"type": ENTITY_TYPES}, optional={"id": ENTITY_IDS, "idPattern": TEXT}
                        ),
                        max_size=2,
                    ),
                    JSON_VALUES,
                ),
                "watchedAttributes": st.one_of(st.lists(TEXT, max_size=3), JSON_VALUES),
                "notificationTrigger": st.one_of(st.lists(TEXT, max_size=2), JSON_VALUES),
                "q": st.one_of(TEXT, JSON_VALUES),
                "geoQ": JSON_VALUES,
                "throttling": JSON_VALUES,
                "timeInterval": JSON_VALUES,
                "expiresAt": st.one_of(TEXT, JSON_VALUES),
                "isActive": JSON_VALUES,
                "jsonldContext": st.one_of(st.just(CORE_URL), TEXT, JSON_VALUES),
                "notification": st.one_of(notification, JSON_VALUES),
            },
        )
    )


@FUZZ
@given(body=raw_bodies(subscriptions()), header_values=headers())
def test_create_subscription(ngsi: NgsiClient, body: bytes, header_values: dict[str, str]) -> None:
    _send(ngsi, "POST", "/subscriptions", body=body, header_values=header_values)


@FUZZ
@given(
    body=raw_bodies(
        st.one_of(st.fixed_dictionaries({"@context": CONTEXTS}), st.dictionaries(TEXT, CONTEXTS, max_size=2))
    ),
    header_values=headers(),
)
def test_add_stored_context(ngsi: NgsiClient, body: bytes, header_values: dict[str, str]) -> None:
    _send(ngsi, "POST", "/jsonldContexts", body=body, header_values=header_values)


# -- temporal (clause 5.7.3/5.7.4) --------------------------------------------------------------------------

TEMPORAL_PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "type": st.one_of(st.just("FuzzRoom"), TEXT),
        "id": st.one_of(st.just(KNOWN_ID), TEXT),
        "idPattern": TEXT,
        "attrs": st.one_of(st.just("temperature"), TEXT),
        "timerel": st.one_of(st.sampled_from(["before", "after", "between"]), TEXT),
        "timeAt": st.one_of(st.just("2026-11-01T09:00:00Z"), TEXT),
        "endTimeAt": st.one_of(st.just("2026-11-02T00:00:00Z"), TEXT),
        "timeproperty": st.one_of(st.sampled_from(["observedAt", "modifiedAt", "createdAt"]), TEXT),
        "options": st.one_of(st.sampled_from(["temporalValues", "aggregatedValues", "sysAttrs"]), TEXT),
        "aggrMethods": st.one_of(st.sampled_from(["totalCount,avg", "sum,min,max", "stddev,sumsq"]), TEXT),
        "aggrPeriodDuration": st.one_of(st.sampled_from(["PT1H", "P1D", "PT0S"]), TEXT),
        "lastN": st.one_of(st.integers(-3, 10**12), TEXT),
        "limit": st.one_of(st.integers(-5, 2000), TEXT),
        "offset": st.one_of(st.integers(-5, 2000), TEXT),
        "count": st.one_of(st.booleans(), TEXT),
        "q": TEXT,
    },
)


@FUZZ
@given(params=TEMPORAL_PARAMS, header_values=headers())
def test_temporal_query(ngsi: NgsiClient, params: dict[str, Any], header_values: dict[str, str]) -> None:
    _seed(ngsi)
    header_values.pop("Content-Type", None)
    _send(ngsi, "GET", "/temporal/entities", header_values=header_values, params=params)


# -- telemetry (/api/v1/context/telemetry) ------------------------------------------------------------------

READINGS = st.fixed_dictionaries(
    {},
    optional={
        "entity": ENTITY_IDS,
        "type": ENTITY_TYPES,
        "observedAt": st.one_of(TEXT, JSON_VALUES),
        "attrs": st.one_of(st.dictionaries(ATTRIBUTE_NAMES, ATTRIBUTE, max_size=3), JSON_VALUES),
    },
)
TELEMETRY = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries(
        {"readings": st.one_of(st.lists(READINGS, max_size=4), JSON_VALUES)},
        optional={"tenant": st.one_of(st.just("fuzz"), TEXT, JSON_VALUES), "messageId": JSON_VALUES},
    ),
)


@FUZZ
@given(body=raw_bodies(TELEMETRY), link=LINKS)
def test_telemetry(ngsi: NgsiClient, body: bytes, link: str | None) -> None:
    request_headers = {**ngsi.headers, "Content-Type": "application/json"}
    if link is not None:
        request_headers["Link"] = link
    response = ngsi.client.post("/api/v1/context/telemetry", content=body, headers=request_headers)
    if response.status_code == 503:
        assert response.json()["title"] == "LdContextNotAvailable", response.text
    else:
        assert response.status_code < 500, response.text
    assert isinstance(response.json(), dict)


# -- regressions found by review --------------------------------------------------------------------------


def test_catastrophic_patterns_are_refused_before_running(ngsi: NgsiClient) -> None:
    """``(a|a)*$`` over this id took seconds per extra character and stalled the whole process."""
    slow = "a" * 40 + "!"
    ngsi.create({"id": f"urn:ngsi-ld:Slow:{slow}", "type": "Slow", "name": slow})
    for params in ({"idPattern": "(a|a)*$", "type": "Slow"}, {"q": 'name~="(a+)+$"', "type": "Slow"}):
        response = ngsi.get("/entities", params=params)
        assert response.status_code == 400, response.text
        assert response.json()["type"] == ERRORS + "BadRequestData"
    subscription = {
        "type": "Subscription",
        "entities": [{"type": "Slow", "idPattern": "(a+)+$"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}},
    }
    assert ngsi.post("/subscriptions", json=subscription).status_code == 400
    assert len(ngsi.get("/entities", params={"idPattern": "^urn:ngsi-ld:Slow:a+!$"}).json()) == 1


def test_attrs_naming_no_attribute_is_no_projection(ngsi: NgsiClient) -> None:
    """``attrs= `` made an empty projection, an empty JSON path on PostgreSQL and a 500."""
    _seed(ngsi)
    for blank in (" ", ",", " , "):
        listed = ngsi.get("/entities", params={"type": "FuzzRoom", "attrs": blank})
        assert listed.status_code == 200, listed.text
        assert listed.json()[0]["temperature"]["value"] == 21.5
        one = ngsi.get(f"/entities/{KNOWN_ID}", params={"attrs": blank})
        assert one.status_code == 200 and "temperature" in one.json()


def test_location_headers_percent_encode_the_id(ngsi: NgsiClient) -> None:
    """A non-ASCII id went into ``Location`` as is: invalid header bytes, or a 500 beyond Latin-1."""
    for local in ("Café", "\U0001f600", "a%20b"):
        created = ngsi.create({"id": f"urn:ngsi-ld:FuzzRoom:{local}", "type": "FuzzRoom"})
        assert created.headers["Location"] == f"/ngsi-ld/v1/entities/urn:ngsi-ld:FuzzRoom:{quote(local)}"
    # the test client decodes a path twice, so only ids without '%' make the round trip here
    found = ngsi.client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:FuzzRoom:Caf%C3%A9", headers=ngsi.headers)
    assert found.status_code == 200 and found.json()["id"] == "urn:ngsi-ld:FuzzRoom:Café"
    subscription = {
        "id": "urn:ngsi-ld:Subscription:é",
        "type": "Subscription",
        "entities": [{"type": "FuzzRoom"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}},
    }
    created = ngsi.post("/subscriptions", json=subscription)
    assert created.headers["Location"] == "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:%C3%A9"


def test_attrs_that_no_attribute_can_have_are_bad_request(ngsi: NgsiClient) -> None:
    """``attrs`` with a NUL or a quote reached the SQL JSON path unchecked: a 500 on both databases."""
    _seed(ngsi)
    for name in ("\x00", 'a"b', "a b"):
        listed = ngsi.get("/entities", params={"type": "FuzzRoom", "attrs": name})
        assert listed.status_code == 400, listed.text
        posted = ngsi.post("/entityOperations/query", json={"type": "Query", "attrs": [name]})
        assert posted.status_code == 400, posted.text


def test_a_non_string_entity_in_a_rejected_reading_is_not_echoed(ngsi: NgsiClient) -> None:
    answer = ngsi.client.post(
        "/api/v1/context/telemetry",
        content=b'{"readings": [{"entity": {"secret": [1, 2]}}]}',
        headers={**ngsi.headers, "Content-Type": "application/json"},
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["entity"] is None


@pytest.mark.parametrize("body", [b'{"readings": [{"entity": Infinity}]}', b'{"readings": [NaN]}'])
def test_telemetry_with_nan_or_infinity_is_not_json(ngsi: NgsiClient, body: bytes) -> None:
    answer = ngsi.client.post(
        "/api/v1/context/telemetry",
        content=body,
        headers={**ngsi.headers, "Content-Type": "application/json"},
    )
    assert answer.status_code == 422
    assert "not JSON" in answer.json()["detail"]
