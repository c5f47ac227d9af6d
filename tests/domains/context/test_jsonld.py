"""JSON-LD @context handling: resolution (local, nested, remote with timeouts and caches), term mapping
checked against PyLD, and the Link/Content-Type/Accept rules of NGSI-LD.

Nothing here touches the internet: remote contexts come from a local HTTP server on 127.0.0.1, and PyLD (the
reference) loads documents only through the resolver's own loader with remote fetching switched off.
"""

from __future__ import annotations

import copy
import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import pytest
from pyld import jsonld as pyld

from cityhub.domains.context.jsonld import (
    CORE_VERSIONS,
    DEFAULT_VOCAB,
    JSONLD_CONTEXT_REL,
    UNVERSIONED_CORE_URL,
    ContextNotAvailable,
    ContextRequestError,
    ContextResolver,
    HttpFetcher,
    InvalidContext,
    TermMapper,
    context_link_header,
    context_url_from_link,
    core_context_url,
    parse_link_header,
    request_context,
    response_format,
)
from cityhub.domains.context.jsonld.errors import BAD_REQUEST_DATA, INVALID_REQUEST, LD_CONTEXT_NOT_AVAILABLE
from cityhub.domains.context.jsonld.mapper import ATTRIBUTE_MEMBERS
from cityhub.domains.context.jsonld.sources import shipped_context_files
from cityhub.domains.context.settings import ContextSettings
from cityhub.kernel.settings import Settings
from tests.domains.context.conftest import SMART_DATA_MODELS

SDM = SMART_DATA_MODELS
SDM_EXAMPLES = sorted(SDM.glob("*/examples/example-normalized.jsonld"))
NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
CORE = core_context_url("1.8")
WEATHER = "https://raw.githubusercontent.com/smart-data-models/dataModel.Weather/master/context.jsonld"
EX = "https://example.org/"

needs_shared = pytest.mark.skipif(not SDM.is_dir(), reason=f"shared reference data not found at {SDM}")


def offline(**overrides: Any) -> ContextSettings:
    return ContextSettings(remote_fetch=False, **overrides)


def no_network(url: str) -> bytes:
    raise AssertionError(f"the resolver tried to download {url}")


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class CountingFetcher:
    inner: Any = no_network
    urls: list[str] = field(default_factory=list)

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        return cast(bytes, self.inner(url))


@pytest.fixture
def resolver() -> ContextResolver:
    return ContextResolver(offline(), fetcher=no_network)


# -- a local context server ----------------------------------------------------------------------------------


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    hang: bool = False
    delay: float = 0.0
    send_length: bool = True


class ContextServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.hang_finished = threading.Event()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def serve(self, path: str, document: Any = None, **route: Any) -> str:
        body = route.pop("body", None)
        if body is None:
            body = json.dumps(document).encode()
        self.routes[path] = Route(body=body, **route)
        return self.url(path)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server = cast(ContextServer, self.server)
        with server.lock:
            server.hits[self.path] += 1
        route = server.routes.get(self.path, Route(status=404, body=b"not here"))
        if route.hang:
            server.release.wait(10)
            server.hang_finished.set()
            return
        if route.delay:
            server.release.wait(route.delay)
        self.send_response(route.status)
        self.send_header("Content-Type", "application/ld+json")
        if route.send_length:
            self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        self.wfile.write(route.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


@pytest.fixture
def server() -> Iterator[ContextServer]:
    httpd = ContextServer()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()


def online(
    clock: FakeClock | None = None, cache_dir: Path | None = None, **overrides: Any
) -> ContextResolver:
    settings = ContextSettings(remote_fetch=True, **{"fetch_timeout_seconds": 2.0, **overrides})
    clock = clock or FakeClock()
    return ContextResolver(settings, cache_dir=cache_dir, clock=clock, wall_clock=clock)


# -- shipped contexts and settings ---------------------------------------------------------------------------


def test_every_shipped_context_is_registered_and_valid(resolver: ContextResolver) -> None:
    files = shipped_context_files()
    for version in CORE_VERSIONS:
        assert core_context_url(version) in files
    for url, path in files.items():
        assert path.is_file(), url
        assert "@context" in resolver.document(url)
        resolver.mapper(url)


@needs_shared
def test_every_smart_data_models_context_url_is_shipped_unchanged() -> None:
    urlmap = json.loads((SDM / "URLMAP.json").read_text(encoding="utf-8"))
    files = shipped_context_files()
    context_urls = {url: path for url, path in urlmap.items() if path.startswith("contexts/")}
    assert context_urls
    for url, relative in context_urls.items():
        shipped = json.loads(files[url].read_text(encoding="utf-8"))
        assert shipped == json.loads((SDM / relative).read_text(encoding="utf-8")), url


def test_settings_read_the_context_map_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    mapped = tmp_path / "ctx.jsonld"
    mapped.write_text(json.dumps({"@context": {"a": EX + "a"}}), encoding="utf-8")
    monkeypatch.setenv("CITYHUB_CONTEXT__CONTEXT_MAP", json.dumps({EX + "ctx.jsonld": str(mapped)}))
    monkeypatch.setenv("CITYHUB_CONTEXT__FETCH_TIMEOUT_SECONDS", "0.5")
    section = ContextSettings()
    assert section.context_map == {EX + "ctx.jsonld": mapped}
    assert section.fetch_timeout_seconds == 0.5
    kernel = Settings(var_dir=tmp_path / "var")
    section.check_environment(kernel)
    assert section.cache_directory(kernel) == tmp_path / "var" / "context" / "jsonld-cache"
    assert ContextSettings(disk_cache=False).cache_directory(kernel) is None
    resolver = ContextResolver.from_settings(kernel, section)
    assert resolver.mapper(EX + "ctx.jsonld").expand_term("a") == EX + "a"

    missing = ContextSettings(context_map={EX + "gone.jsonld": tmp_path / "gone.jsonld"})
    with pytest.raises(ValueError, match="do not exist"):
        missing.check_environment(kernel)


def test_every_setting_is_described() -> None:
    for name, setting in ContextSettings.model_fields.items():
        assert setting.description, name


# -- resolution ----------------------------------------------------------------------------------------------


def test_no_context_means_the_core_context_and_the_default_vocabulary(resolver: ContextResolver) -> None:
    mapper = resolver.mapper(None)
    assert mapper.vocab == DEFAULT_VOCAB == NGSI_LD + "default-context/"
    assert mapper.expand_term("Property") == NGSI_LD + "Property"
    assert mapper.expand_term("observedAt") == NGSI_LD + "observedAt"
    assert mapper.expand_term("type") == "@type"
    assert mapper.expand_term("temperature") == DEFAULT_VOCAB + "temperature"
    assert mapper.context.link_url == CORE
    assert mapper.context.body_context == CORE


def test_core_contexts_are_never_downloaded() -> None:
    resolver = ContextResolver(ContextSettings(remote_fetch=True), fetcher=no_network)
    for url in [
        *(core_context_url(version) for version in CORE_VERSIONS),
        UNVERSIONED_CORE_URL,
        "http://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld",
        core_context_url("1.5"),
        core_context_url("1.0"),
    ]:
        assert resolver.mapper(url).expand_term("Relationship") == NGSI_LD + "Relationship", url
    # A shipped version's own terms apply; v1.9 defines jsonldContext, the default core (v1.8) does not.
    assert resolver.mapper(core_context_url("1.9")).expand_term("jsonldContext") == NGSI_LD + "jsonldContext"
    assert resolver.mapper(None).expand_term("jsonldContext") == DEFAULT_VOCAB + "jsonldContext"


def test_the_configured_core_version_is_applied() -> None:
    resolver = ContextResolver(offline(core_context_version="1.9"), fetcher=no_network)
    assert resolver.core_url == core_context_url("1.9")
    assert resolver.mapper(None).expand_term("jsonldContext") == NGSI_LD + "jsonldContext"
    assert resolver.mapper(UNVERSIONED_CORE_URL).expand_term("jsonldContext") == NGSI_LD + "jsonldContext"


def test_operator_map_serves_local_files_and_overrides_shipped_ones(tmp_path: Path) -> None:
    own = tmp_path / "own.jsonld"
    own.write_text(json.dumps({"@context": {"temperature": EX + "temperature"}}), encoding="utf-8")
    pinned = tmp_path / "weather.jsonld"
    pinned.write_text(json.dumps({"@context": {"WeatherObserved": EX + "Weather"}}), encoding="utf-8")
    settings = ContextSettings(remote_fetch=True, context_map={EX + "own.jsonld": own, WEATHER: pinned})
    resolver = ContextResolver(settings, fetcher=no_network)
    assert resolver.mapper(EX + "own.jsonld").expand_term("temperature") == EX + "temperature"
    assert resolver.mapper(WEATHER).expand_term("WeatherObserved") == EX + "Weather"


def test_a_mapped_file_that_disappeared_makes_the_context_unavailable(tmp_path: Path) -> None:
    resolver = ContextResolver(offline(context_map={EX + "c": tmp_path / "gone.jsonld"}), fetcher=no_network)
    with pytest.raises(ContextNotAvailable, match="cannot be read"):
        resolver.mapper(EX + "c")


def test_inline_objects_and_lists_mixing_urls_later_entries_win(resolver: ContextResolver) -> None:
    inline = {"temperature": EX + "temperature", "ex": EX}
    assert resolver.mapper(inline).expand_term("temperature") == EX + "temperature"
    assert resolver.mapper(inline).expand_term("ex:humidity") == EX + "humidity"
    weather_then_inline = resolver.mapper([WEATHER, inline])
    assert weather_then_inline.expand_term("temperature") == EX + "temperature"
    assert weather_then_inline.expand_term("WeatherObserved").startswith("https://smartdatamodels.org/")
    inline_then_weather = resolver.mapper([inline, WEATHER])
    assert (
        inline_then_weather.expand_term("temperature")
        == "https://smartdatamodels.org/dataModel.Weather/temperature"
    )
    assert weather_then_inline.context.urls == (WEATHER,)
    assert weather_then_inline.context.link_url is None
    assert weather_then_inline.context.body_context == [WEATHER, inline]


def test_nested_contexts_relative_urls_and_import(resolver: ContextResolver) -> None:
    resolver.register(EX + "inner.jsonld", {"@context": {"ex": EX, "a": "ex:a"}})
    resolver.register(EX + "ctx/outer.jsonld", {"@context": ["../inner.jsonld", {"b": "ex:b"}]})
    resolver.register(
        EX + "importing.jsonld", {"@context": {"@import": EX + "inner.jsonld", "a": EX + "other"}}
    )
    outer = resolver.mapper(EX + "ctx/outer.jsonld")
    assert outer.expand_term("a") == EX + "a"
    assert outer.expand_term("b") == EX + "b"
    assert outer.context.urls == (EX + "ctx/outer.jsonld", EX + "inner.jsonld")
    importing = resolver.mapper(EX + "importing.jsonld")
    assert importing.expand_term("a") == EX + "other"
    assert importing.expand_term("ex:c") == EX + "c"


def _chain(resolver: ContextResolver, length: int) -> list[str]:
    urls = [f"{EX}chain/{index}.jsonld" for index in range(length)]
    for index, url in enumerate(urls):
        nested = urls[index + 1] if index + 1 < length else {"deep": EX + "deep"}
        resolver.register(url, {"@context": nested})
    return urls


def test_nesting_is_limited_and_cycles_are_refused() -> None:
    resolver = ContextResolver(offline(max_nesting_depth=3), fetcher=no_network)
    urls = _chain(resolver, 4)
    assert resolver.mapper(urls[1]).expand_term("deep") == EX + "deep"
    with pytest.raises(InvalidContext, match="deeper than 3"):
        resolver.mapper(urls[0])
    resolver.register(EX + "a.jsonld", {"@context": EX + "b.jsonld"})
    resolver.register(EX + "b.jsonld", {"@context": [{"x": EX + "x"}, EX + "a.jsonld"]})
    with pytest.raises(InvalidContext, match="recursive context inclusion"):
        resolver.mapper(EX + "a.jsonld")
    # The same context twice side by side is not a cycle.
    assert resolver.mapper([urls[3], urls[3]]).expand_term("deep") == EX + "deep"


@pytest.mark.parametrize(
    "context",
    [
        42,
        True,
        {"a": 42},
        {"a": {"@id": 5}},
        {"a": {"@id": EX + "a", "@unknown": "x"}},
        {"a": "b", "b": "a"},
        {"@version": 1.0},
        {"@vocab": 5},
        {"@vocab": "relative"},
        {"a": {"@id": EX + "a", "@container": 5}},
        {"a": {"@id": EX + "a", "@type": 5}},
        {"a": {"@id": EX + "a", "@prefix": "yes"}},
        {"@import": 5},
        {"x": "@context"},
        {"": EX + "empty"},
        "relative.jsonld",
        [EX + "ok.jsonld", 7],
    ],
)
def test_malformed_contexts_are_invalid(resolver: ContextResolver, context: Any) -> None:
    resolver.register(EX + "ok.jsonld", {"@context": {"ok": EX + "ok"}})
    with pytest.raises(InvalidContext) as raised:
        resolver.mapper(context)
    assert raised.value.status == 400
    assert raised.value.problem_type == BAD_REQUEST_DATA


def test_a_context_document_must_be_an_object_with_an_at_context(resolver: ContextResolver) -> None:
    bad_documents: list[Any] = [{"terms": {}}, [1, 2], "not json", b"[]"]
    for document in bad_documents:
        with pytest.raises(InvalidContext):
            resolver.register(EX + "bad.jsonld", document)
    resolver.register(EX + "text.jsonld", json.dumps({"@context": {"t": EX + "t"}}))
    assert resolver.mapper(EX + "text.jsonld").expand_term("t") == EX + "t"


def test_core_terms_cannot_be_redefined_by_a_user_context(resolver: ContextResolver) -> None:
    evil = {
        "type": "https://evil.example/type",
        "Property": "https://evil.example/Property",
        "location": "https://evil.example/location",
        "value": "https://evil.example/value",
        "temperature": EX + "temperature",
    }
    for context in (evil, [CORE, evil], [UNVERSIONED_CORE_URL, evil]):
        mapper = resolver.mapper(context)
        assert mapper.expand_term("type") == "@type"
        assert mapper.expand_term("Property") == NGSI_LD + "Property"
        assert mapper.expand_term("location") == NGSI_LD + "location"
        assert mapper.expand_term("value") == NGSI_LD + "hasValue"
        assert mapper.expand_term("temperature") == EX + "temperature"
        assert mapper.context.shadowed == {"type", "Property", "location", "value"}
    # A strict JSON-LD 1.1 processor refuses the second form (the core's terms are @protected); NGSI-LD
    # brokers apply the core last instead, which is what the resolver does for every form.
    with pytest.raises(pyld.JsonLdError):
        pyld.expand(
            {"@context": [CORE, evil], "location": {}}, {"documentLoader": resolver.document_loader()}
        )


def test_the_core_vocab_replaces_a_user_vocab_as_any_processor_would(resolver: ContextResolver) -> None:
    context = {"@vocab": EX + "vocab#"}
    assert resolver.mapper(context).expand_term("colour") == DEFAULT_VOCAB + "colour"
    expanded = pyld.expand(
        {"@context": [context, CORE], "colour": "red"}, {"documentLoader": resolver.document_loader()}
    )
    assert set(expanded[0]) == {DEFAULT_VOCAB + "colour"}


def test_a_dereferenceable_context_is_needed_for_unknown_urls() -> None:
    fetcher = CountingFetcher()
    resolver = ContextResolver(ContextSettings(remote_fetch=True), fetcher=fetcher)
    for url in ("urn:example:context", "ftp://example.org/c.jsonld"):
        with pytest.raises(ContextNotAvailable, match="only http and https"):
            resolver.mapper(url)
    assert fetcher.urls == []


def test_with_fetching_disabled_unknown_urls_are_unavailable_without_network() -> None:
    fetcher = CountingFetcher()
    resolver = ContextResolver(offline(), fetcher=fetcher)
    with pytest.raises(ContextNotAvailable, match="fetching is disabled") as raised:
        resolver.mapper(EX + "unknown.jsonld")
    assert raised.value.url == EX + "unknown.jsonld"
    assert fetcher.urls == []


def test_registered_contexts_replace_and_unregister(resolver: ContextResolver) -> None:
    url = EX + "stored.jsonld"
    resolver.register(url, {"@context": {"a": EX + "first"}})
    assert resolver.mapper(url).expand_term("a") == EX + "first"
    resolver.register(url, {"@context": {"a": EX + "second"}})
    assert resolver.mapper(url).expand_term("a") == EX + "second"
    assert resolver.unregister(url)
    assert not resolver.unregister(url)
    with pytest.raises(ContextNotAvailable):
        resolver.mapper(url)
    with pytest.raises(ValueError, match="core context"):
        resolver.register(CORE, {"@context": {}})


def test_mappers_are_memoised_per_context(resolver: ContextResolver) -> None:
    assert resolver.cached_mapper(WEATHER) is None
    mapper = resolver.mapper(WEATHER)
    assert resolver.mapper(WEATHER) is mapper
    assert resolver.cached_mapper(WEATHER) is mapper
    first = resolver.mapper({"a": EX + "a", "b": EX + "b"})
    assert resolver.mapper({"b": EX + "b", "a": EX + "a"}) is first
    assert resolver.mapper([{"a": EX + "a"}]) is not first
    assert resolver.mapper(None) is resolver.mapper(None)
    inline = {"a": EX + "a"}
    inline_mapper = resolver.mapper(inline)
    inline["a"] = EX + "changed"
    assert inline_mapper.context.user_context == {"a": EX + "a"}


# -- term mapping --------------------------------------------------------------------------------------------


def test_expand_term_kinds(resolver: ContextResolver) -> None:
    mapper = resolver.mapper(
        {"ex": EX, "speed": "ex:speed", "ns": EX + "ns", "nsp": {"@id": EX + "nsp", "@prefix": True}}
    )
    assert mapper.expand_term("speed") == EX + "speed"
    assert mapper.expand_term("ex:weight") == EX + "weight"
    assert mapper.expand_term("https://other.example/colour") == "https://other.example/colour"
    assert mapper.expand_term("urn:example:thing") == "urn:example:thing"
    assert mapper.expand_term("_:b0") == "_:b0"
    assert mapper.expand_term("ngsi-ld:foo") == NGSI_LD + "foo"
    # A term whose IRI does not end with a delimiter is no prefix (JSON-LD 1.1) unless declared one.
    assert mapper.expand_term("ns:foo") == "ns:foo"
    assert mapper.expand_term("nsp:foo") == EX + "nspfoo"
    assert mapper.expand_term("height") == DEFAULT_VOCAB + "height"
    assert mapper.expand_term("@id") == "@id"


def test_compaction_prefers_the_shortest_term_then_vocab_then_compact_iris(resolver: ContextResolver) -> None:
    mapper = resolver.mapper(
        {
            "ex": EX,
            "temperature": EX + "temperature",
            "temp": EX + "temperature",
            "b": EX + "same",
            "a": EX + "same",
        }
    )
    assert mapper.compact_iri(EX + "temperature") == "temp"
    assert mapper.compact_iri(EX + "same") == "a"
    assert mapper.compact_iri(EX + "speed") == "ex:speed"
    assert mapper.compact_iri(DEFAULT_VOCAB + "height") == "height"
    assert mapper.compact_iri(NGSI_LD + "Property") == "Property"
    assert mapper.compact_iri(NGSI_LD + "somethingNew") == "ngsi-ld:somethingNew"
    assert mapper.compact_iri("https://other.example/x") == "https://other.example/x"
    assert mapper.compact_iri("@type") == "type"
    # "temperature" means something else here, so the default-vocabulary IRI cannot compact to it.
    shadowed = mapper.compact_iri(DEFAULT_VOCAB + "temperature")
    assert shadowed != "temperature"
    assert mapper.expand_term(shadowed) == DEFAULT_VOCAB + "temperature"


def test_expansion_and_compaction_round_trip(resolver: ContextResolver) -> None:
    mapper = resolver.mapper([WEATHER, {"ex": EX, "alias": EX + "alias"}])
    names = [
        "temperature",
        "WeatherObserved",
        "location",
        "Property",
        "alias",
        "somethingElse",
        "ex:thing",
        "dateObserved",
    ]
    for name in names:
        assert mapper.compact_iri(mapper.expand_term(name)) == name
    iris = [
        EX + "x",
        EX + "alias",
        DEFAULT_VOCAB + "y",
        NGSI_LD + "z",
        "urn:a:b",
        "https://h.example/p#q",
        "_:b1",
    ]
    for iri in iris:
        assert mapper.expand_term(mapper.compact_iri(iri)) == iri


def test_the_memo_of_a_mapper_is_bounded(resolver: ContextResolver) -> None:
    mapper = TermMapper(resolver.resolve(None), cache_limit=400)
    for index in range(1000):
        assert mapper.expand_term(f"name{index}") == f"{DEFAULT_VOCAB}name{index}"
    assert len(mapper._expanded) <= 400


VEHICLE_CONTEXT = {
    "ex": EX,
    "Vehicle": "ex:Vehicle",
    "speed": "ex:speed",
    "accuracy": "ex:accuracy",
    "Person": "ex:Person",
}
VEHICLE = {
    "id": "urn:ngsi-ld:Vehicle:1",
    "type": "Vehicle",
    "@context": VEHICLE_CONTEXT,
    "speed": {
        "type": "Property",
        "value": 5,
        "observedAt": "2026-01-01T00:00:00Z",
        "unitCode": "KMH",
        "accuracy": {"type": "Property", "value": 0.9},
    },
    "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [116.4, 39.9]}},
    "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Person:2", "objectType": "Person"},
    "category": {"type": "VocabProperty", "vocab": ["ex:bus", "municipal"]},
    "load": [
        {"type": "Property", "value": 1, "datasetId": "urn:ngsi-ld:Dataset:a"},
        {"type": "Property", "value": 2},
    ],
    "parkedAt": {"type": "Point", "coordinates": [116.4, 39.9]},
    "tags": ["a", "b"],
    "driver": {
        "type": "Relationship",
        "object": "urn:x:1",
        "entity": {"id": "urn:x:1", "type": "Person", "speed": 3},
    },
}


def test_entity_expansion_rewrites_names_and_types_only(resolver: ContextResolver) -> None:
    mapper = resolver.mapper(VEHICLE_CONTEXT)
    expanded = mapper.expand_entity(VEHICLE)
    assert "@context" not in expanded
    assert expanded["id"] == "urn:ngsi-ld:Vehicle:1"
    assert expanded["type"] == EX + "Vehicle"
    speed = expanded[EX + "speed"]
    assert (
        speed["value"] == 5 and speed["unitCode"] == "KMH" and speed["observedAt"] == "2026-01-01T00:00:00Z"
    )
    assert speed[EX + "accuracy"] == {"type": "Property", "value": 0.9}
    assert expanded[NGSI_LD + "location"] == VEHICLE["location"]
    assert expanded[DEFAULT_VOCAB + "owner"]["objectType"] == EX + "Person"
    assert expanded[DEFAULT_VOCAB + "category"]["vocab"] == [EX + "bus", DEFAULT_VOCAB + "municipal"]
    assert [instance["value"] for instance in expanded[DEFAULT_VOCAB + "load"]] == [1, 2]
    assert expanded[DEFAULT_VOCAB + "parkedAt"] == VEHICLE["parkedAt"]
    assert expanded[DEFAULT_VOCAB + "tags"] == ["a", "b"]
    assert expanded[DEFAULT_VOCAB + "driver"]["entity"] == {
        "id": "urn:x:1",
        "type": EX + "Person",
        EX + "speed": 3,
    }
    original = {key: value for key, value in VEHICLE.items() if key != "@context"}
    assert mapper.compact_entity(expanded) == original
    assert VEHICLE["type"] == "Vehicle", "the input is not modified"


def test_key_values_bodies_keep_their_values(resolver: ContextResolver) -> None:
    mapper = resolver.mapper(VEHICLE_CONTEXT)
    body = {"id": "urn:x", "type": "Vehicle", "speed": {"accuracy": 1}, "category": "bus"}
    expanded = mapper.expand_entity(body, key_values=True)
    assert expanded == {
        "id": "urn:x",
        "type": EX + "Vehicle",
        EX + "speed": {"accuracy": 1},
        DEFAULT_VOCAB + "category": "bus",
    }
    assert mapper.compact_entity(expanded, key_values=True) == body


def test_two_names_for_one_attribute_are_refused(resolver: ContextResolver) -> None:
    mapper = resolver.mapper(VEHICLE_CONTEXT)
    with pytest.raises(ContextRequestError, match="twice") as raised:
        mapper.expand_entity(
            {"id": "urn:x", "type": "Vehicle", "speed": {"value": 1}, "ex:speed": {"value": 2}}
        )
    assert raised.value.problem_type == BAD_REQUEST_DATA


# -- PyLD as the reference -----------------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _assert_node_names_agree(
    mapper: TermMapper, oracle: dict[str, Any], ours: dict[str, Any], where: str
) -> None:
    """Same expanded names at this level; then the same for every attribute and sub-attribute below."""
    structural = {"@id", "@type"}
    assert set(oracle) - structural == {mapper.expand_term(key) for key in ours} - structural, where
    for key, value in ours.items():
        iri = mapper.expand_term(key)
        if iri.startswith("@") or key in ATTRIBUTE_MEMBERS:
            continue
        for index, (oracle_instance, instance) in enumerate(zip(oracle[iri], _as_list(value), strict=True)):
            if isinstance(instance, dict):
                label = f"{where} > {key}[{index}]"
                assert oracle_instance.get("@type") == [mapper.expand_term(instance["type"])], label
                _assert_node_names_agree(mapper, oracle_instance, instance, label)


def assert_agrees_with_pyld(resolver: ContextResolver, document: dict[str, Any]) -> TermMapper:
    """Our expansion of names and types must be what PyLD expands them to with the core context last."""
    mapper = resolver.mapper(document["@context"])
    ours = mapper.expand_entity(document)
    reference = {**document, "@context": [*_as_list(document["@context"]), resolver.core_url]}
    (oracle,) = pyld.expand(reference, {"documentLoader": resolver.document_loader()})
    assert oracle["@type"] == _as_list(ours["type"])
    _assert_node_names_agree(mapper, oracle, ours, document["id"])
    return mapper


@needs_shared
@pytest.mark.parametrize("example", SDM_EXAMPLES, ids=[path.parts[-3] for path in SDM_EXAMPLES])
def test_smart_data_models_examples_expand_as_pyld_does(resolver: ContextResolver, example: Path) -> None:
    document = json.loads(example.read_text(encoding="utf-8"))
    mapper = assert_agrees_with_pyld(resolver, document)
    expanded = mapper.expand_entity(document)
    assert mapper.compact_entity(expanded) == {k: v for k, v in document.items() if k != "@context"}


def test_smart_data_models_examples_were_found() -> None:
    if SDM.is_dir():
        assert len(SDM_EXAMPLES) >= 8
    else:
        pytest.skip(f"shared reference data not found at {SDM}")


@pytest.mark.parametrize(
    "context",
    [
        VEHICLE_CONTEXT,
        {"speed": "ex:speed", "ex": EX, "Vehicle": {"@id": "ex:Vehicle"}},
        {"ns": EX + "ns", "nsp": {"@id": EX + "nsp", "@prefix": True}, "Vehicle": EX + "V"},
        {"a": EX + "a", "speed": {"@id": "a"}, "Vehicle": {"@id": "a", "@type": "@id"}},
        {"@vocab": EX + "v#", "Vehicle": EX + "Vehicle"},
        [WEATHER, {"Vehicle": EX + "Vehicle", "temperature": EX + "t"}],
        [EX + "nested.jsonld", {"Vehicle": "ex:Vehicle"}],
        {"@import": EX + "importable.jsonld", "Vehicle": "ex:Vehicle"},
    ],
)
def test_handmade_contexts_expand_as_pyld_does(resolver: ContextResolver, context: Any) -> None:
    resolver.register(
        EX + "nested.jsonld", {"@context": [{"ex": EX}, {"speed": "ex:speed2", "deep": "ex:deep"}]}
    )
    resolver.register(EX + "importable.jsonld", {"@context": {"ex": EX, "speed": "ex:speed3"}})
    document = {
        "@context": context,
        "id": "urn:ngsi-ld:Vehicle:1",
        "type": ["Vehicle", "ex:Other"],
        "speed": {"type": "Property", "value": 1, "deep": {"type": "Property", "value": 2}},
        "ns:foo": {"type": "Property", "value": 3},
        "nsp:foo": {"type": "Property", "value": 4},
        "https://other.example/colour": {"type": "Property", "value": "red"},
        "temperature": {"type": "Property", "value": 20, "observedAt": "2026-01-01T00:00:00Z"},
        "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Person:1"},
    }
    assert_agrees_with_pyld(resolver, document)


# -- remote contexts -----------------------------------------------------------------------------------------


def test_a_remote_context_is_downloaded_once_then_served_from_memory_and_disk(
    server: ContextServer, tmp_path: Path
) -> None:
    url = server.serve("/ctx.jsonld", {"@context": {"a": EX + "a"}})
    resolver = online(cache_dir=tmp_path)
    assert resolver.mapper(url).expand_term("a") == EX + "a"
    assert resolver.resolve(url).terms["a"].iri == EX + "a"
    assert server.hits["/ctx.jsonld"] == 1
    assert len(list(tmp_path.glob("*.json"))) == 1
    restarted = ContextResolver(offline(), cache_dir=tmp_path, fetcher=no_network)
    assert restarted.mapper(url).expand_term("a") == EX + "a"
    assert server.hits["/ctx.jsonld"] == 1


def test_a_remote_context_is_downloaded_again_after_its_ttl(server: ContextServer) -> None:
    url = server.serve("/ctx.jsonld", {"@context": {"a": EX + "a"}})
    clock = FakeClock()
    resolver = online(clock, cache_ttl_seconds=60)
    resolver.mapper(url)
    clock.advance(30)
    resolver.mapper(url)
    assert server.hits["/ctx.jsonld"] == 1
    server.serve("/ctx.jsonld", {"@context": {"a": EX + "new"}})
    clock.advance(31)
    assert resolver.mapper(url).expand_term("a") == EX + "new"
    assert server.hits["/ctx.jsonld"] == 2


def test_the_previous_copy_is_served_when_a_refresh_fails(server: ContextServer, tmp_path: Path) -> None:
    url = server.serve("/ctx.jsonld", {"@context": {"a": EX + "a"}})
    clock = FakeClock()
    resolver = online(clock, cache_dir=tmp_path, cache_ttl_seconds=60, failure_ttl_seconds=30)
    resolver.mapper(url)
    server.serve("/ctx.jsonld", status=500, body=b"down")
    clock.advance(61)
    assert resolver.mapper(url).expand_term("a") == EX + "a"
    assert server.hits["/ctx.jsonld"] == 2
    clock.advance(10)
    resolver.mapper(url)
    assert server.hits["/ctx.jsonld"] == 2, "the failed refresh is not retried before failure_ttl"


@pytest.mark.parametrize("send_length", [True, False])
def test_a_context_over_the_size_limit_is_refused(server: ContextServer, send_length: bool) -> None:
    url = server.serve(
        "/big.jsonld", {"@context": {f"t{i}": f"{EX}{i}" for i in range(200)}}, send_length=send_length
    )
    with pytest.raises(ContextNotAvailable, match="larger than 1024 bytes"):
        online(max_context_bytes=1024).mapper(url)


def test_http_errors_are_unavailable_and_remembered(server: ContextServer) -> None:
    url = server.url("/missing.jsonld")
    clock = FakeClock()
    resolver = online(clock, failure_ttl_seconds=30)
    for _ in range(3):
        with pytest.raises(ContextNotAvailable, match="HTTP 404") as raised:
            resolver.mapper(url)
        assert raised.value.status == 503
        assert raised.value.problem_type == LD_CONTEXT_NOT_AVAILABLE
    assert server.hits["/missing.jsonld"] == 1
    clock.advance(31)
    with pytest.raises(ContextNotAvailable):
        resolver.mapper(url)
    assert server.hits["/missing.jsonld"] == 2


def test_a_remote_document_that_is_not_a_context_is_invalid_and_remembered(server: ContextServer) -> None:
    url = server.serve("/page.html", body=b"<html>captive portal</html>")
    resolver = online()
    for _ in range(2):
        with pytest.raises(InvalidContext, match="not JSON"):
            resolver.mapper(url)
    assert server.hits["/page.html"] == 1


def test_a_blackholed_context_fails_within_the_timeout_then_from_the_negative_cache(
    server: ContextServer,
) -> None:
    url = server.serve("/slow.jsonld", hang=True)
    clock = FakeClock()
    resolver = online(clock, fetch_timeout_seconds=0.3, failure_ttl_seconds=30)
    with pytest.raises(ContextNotAvailable, match=r"no answer within 0\.3 s"):
        resolver.mapper([url, {"a": EX + "a"}])
    assert not server.hang_finished.is_set(), "the request gave up while the server was still holding it"
    with pytest.raises(ContextNotAvailable, match="no answer"):
        resolver.mapper(url)
    assert server.hits["/slow.jsonld"] == 1, "the second request was answered from the negative cache"
    clock.advance(31)
    with pytest.raises(ContextNotAvailable):
        resolver.mapper(url)
    assert server.hits["/slow.jsonld"] == 2, "after failure_ttl the URL is tried again"


def test_an_unreachable_port_fails_and_is_not_retried_at_once() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = ContextSettings(remote_fetch=True, fetch_timeout_seconds=1.0)
    fetcher = CountingFetcher(HttpFetcher(settings.fetch_timeout_seconds, settings.max_context_bytes))
    resolver = ContextResolver(settings, fetcher=fetcher)
    url = f"http://127.0.0.1:{port}/ctx.jsonld"
    for _ in range(2):
        with pytest.raises(ContextNotAvailable):
            resolver.mapper(url)
    assert fetcher.urls == [url]


def test_concurrent_requests_for_one_url_share_one_download(server: ContextServer) -> None:
    url = server.serve("/shared.jsonld", {"@context": {"a": EX + "a"}}, delay=0.3)
    resolver = online()
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(resolver.mapper(url).expand_term("a")))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [EX + "a"] * 6
    assert server.hits["/shared.jsonld"] == 1


def test_errors_carry_their_problem_type_and_copy_cleanly() -> None:
    error = ContextNotAvailable(EX + "c", "timed out")
    copied = copy.copy(error)
    assert (copied.url, copied.reason, copied.status, str(copied)) == (EX + "c", "timed out", 503, str(error))
    invalid = copy.copy(InvalidContext("bad", EX + "c"))
    assert (invalid.reason, invalid.url, invalid.status) == ("bad", EX + "c", 400)
    request = copy.copy(ContextRequestError("no", INVALID_REQUEST, 415))
    assert (request.message, request.problem_type, request.status) == ("no", INVALID_REQUEST, 415)


# -- Link header ---------------------------------------------------------------------------------------------

CONTEXT_LINK = f'<{EX}c.jsonld>; rel="{JSONLD_CONTEXT_REL}"; type="application/ld+json"'


@pytest.mark.parametrize(
    "header",
    [
        CONTEXT_LINK,
        f"<{EX}c.jsonld>;rel={JSONLD_CONTEXT_REL}",
        f'<https://a.example/next>; rel="next"; title="a, b; <c>", {CONTEXT_LINK}',
        f'<{EX}c.jsonld>; rel="alternate HTTP://WWW.W3.ORG/ns/json-ld#context"',
        ['<https://a.example/next>; rel="next"', CONTEXT_LINK],
        f'  <{EX}c.jsonld> ;  rel = "{JSONLD_CONTEXT_REL}" ; rel="next"  ',
        context_link_header(EX + "c.jsonld"),
    ],
)
def test_the_context_link_is_found(header: str | list[str]) -> None:
    assert context_url_from_link(header) == EX + "c.jsonld"


@pytest.mark.parametrize(
    "header", [None, "", [], '<https://a.example/next>; rel="next"', f'<{EX}c>; rel="context"']
)
def test_no_context_link(header: str | list[str] | None) -> None:
    assert context_url_from_link(header) is None


def test_link_parameters_are_parsed() -> None:
    (link,) = parse_link_header(r'<https://a.example/x>; TITLE="say \"hi\"; ok"; rel="A b"; flag; rel="c"')
    assert link.url == "https://a.example/x"
    assert link.params == {"title": 'say "hi"; ok', "rel": "A b", "flag": ""}
    assert link.rels == ("a", "b")


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (f'{EX}c.jsonld; rel="{JSONLD_CONTEXT_REL}"', INVALID_REQUEST),
        (f'<{EX}c.jsonld; rel="{JSONLD_CONTEXT_REL}"', INVALID_REQUEST),
        (f'<{EX}c.jsonld>; rel="{JSONLD_CONTEXT_REL}', INVALID_REQUEST),
        (f'<{EX}c.jsonld> rel="{JSONLD_CONTEXT_REL}"', INVALID_REQUEST),
        (f"<{EX}c.jsonld>; =x", INVALID_REQUEST),
        (f'{CONTEXT_LINK}, <{EX}d.jsonld>; rel="{JSONLD_CONTEXT_REL}"', INVALID_REQUEST),
        (f'<c.jsonld>; rel="{JSONLD_CONTEXT_REL}"', BAD_REQUEST_DATA),
    ],
)
def test_bad_link_headers_are_refused(header: str, problem: str) -> None:
    with pytest.raises(ContextRequestError) as raised:
        context_url_from_link(header)
    assert raised.value.problem_type == problem
    assert raised.value.status == 400


def test_a_link_header_cannot_carry_a_url_that_would_break_it() -> None:
    with pytest.raises(ValueError, match="Link header"):
        context_link_header(EX + "a>b")


# -- where the context travels -------------------------------------------------------------------------------

ENTITY = {"id": "urn:ngsi-ld:T:1", "type": "T"}
LD_ENTITY = {**ENTITY, "@context": EX + "c.jsonld"}


@pytest.mark.parametrize(
    ("content_type", "link", "body", "source", "context"),
    [
        ("application/json", CONTEXT_LINK, ENTITY, "link", EX + "c.jsonld"),
        ("application/json", None, ENTITY, "core", None),
        ("Application/JSON; charset=utf-8", CONTEXT_LINK, ENTITY, "link", EX + "c.jsonld"),
        ("application/merge-patch+json", CONTEXT_LINK, ENTITY, "link", EX + "c.jsonld"),
        ("application/ld+json", None, LD_ENTITY, "body", EX + "c.jsonld"),
        (
            "application/ld+json;charset=utf-8",
            '<https://a.example/n>; rel="next"',
            LD_ENTITY,
            "body",
            EX + "c.jsonld",
        ),
        (None, CONTEXT_LINK, None, "link", EX + "c.jsonld"),
        ("application/ld+json", CONTEXT_LINK, None, "link", EX + "c.jsonld"),
        (None, None, None, "core", None),
    ],
)
def test_where_the_request_context_comes_from(
    content_type: str | None, link: str | None, body: Any, source: str, context: Any
) -> None:
    found = request_context(content_type, link, body)
    assert (found.source, found.context) == (source, context)


def test_array_bodies_carry_one_context_per_entity() -> None:
    found = request_context("application/ld+json", None, [LD_ENTITY, {**ENTITY, "@context": {"a": EX + "a"}}])
    assert found.source == "body"
    assert found.item_contexts == (EX + "c.jsonld", {"a": EX + "a"})
    assert request_context("application/json", CONTEXT_LINK, [ENTITY, ENTITY]).context == EX + "c.jsonld"


@pytest.mark.parametrize(
    ("content_type", "link", "body", "status", "message"),
    [
        ("application/json", None, LD_ENTITY, 400, "must not contain @context"),
        ("application/json", CONTEXT_LINK, [ENTITY, LD_ENTITY], 400, "must not contain @context"),
        ("application/ld+json", CONTEXT_LINK, LD_ENTITY, 400, "must not accompany"),
        ("application/ld+json", None, ENTITY, 400, "must contain @context"),
        ("application/ld+json", None, [LD_ENTITY, ENTITY], 400, "every entity"),
        ("text/plain", None, ENTITY, 415, "Content-Type"),
        (None, None, ENTITY, 415, "missing"),
    ],
)
def test_contradictory_requests_are_refused(
    content_type: str | None, link: str | None, body: Any, status: int, message: str
) -> None:
    with pytest.raises(ContextRequestError, match=message) as raised:
        request_context(content_type, link, body)
    assert raised.value.status == status


@pytest.mark.parametrize(
    ("accept", "media_type", "in_body"),
    [
        (None, "application/json", False),
        ("", "application/json", False),
        ("*/*", "application/json", False),
        ("application/*", "application/json", False),
        ("application/json", "application/json", False),
        ("application/ld+json", "application/ld+json", True),
        ("application/geo+json", "application/geo+json", False),
        ("application/ld+json, application/json", "application/ld+json", True),
        ("application/json, application/ld+json", "application/json", False),
        ("application/json;q=0.5, application/ld+json", "application/ld+json", True),
        ("application/ld+json;q=0, */*", "application/json", False),
        ("text/html, application/ld+json;q=0.1", "application/ld+json", True),
        ("application/ld+json;profile=x;q=0.8, */*;q=0.1", "application/ld+json", True),
    ],
)
def test_where_the_response_context_goes(accept: str | None, media_type: str, in_body: bool) -> None:
    chosen = response_format(accept)
    assert (chosen.media_type, chosen.context_in_body, chosen.context_in_link) == (
        media_type,
        in_body,
        not in_body,
    )


@pytest.mark.parametrize("accept", ["text/html", "*/*;q=0", "application/xml, text/*"])
def test_an_unsatisfiable_accept_is_refused(accept: str) -> None:
    with pytest.raises(ContextRequestError, match="acceptable") as raised:
        response_format(accept)
    assert raised.value.status == 406
