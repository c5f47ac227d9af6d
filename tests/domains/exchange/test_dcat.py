"""The DCAT-AP 3 export: the catalogue reads the same in Turtle, JSON-LD and RDF/XML, conforms to the DCAT-AP
SHACL shapes of the shared data folder (validated offline by pyshacl), fails them when a dataset has no
description, and shows only published open resources (both databases)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pyshacl import validate
from rdflib import RDF, Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import DCTERMS, FOAF

from tests.domains.exchange.world import API, build_exchange, published, registered

# The steering data folder beside the repository; absent outside CI, then the SHACL tests skip.
DCAT_AP_SHAPES = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "dcat-ap" / "shacl"
# Plain namespaces: pytest's collection probes module attributes, and rdflib's closed DCAT and SHACL warn.
DCAT = Namespace("http://www.w3.org/ns/dcat#")
SH = Namespace("http://www.w3.org/ns/shacl#")
MEDIA_TYPES = {"ttl": "text/turtle", "jsonld": "application/ld+json", "rdf": "application/rdf+xml"}
PARSERS = {"ttl": "turtle", "jsonld": "json-ld", "rdf": "xml"}
# rdflib's own JSON-LD parser still builds a ConjunctiveGraph inside; nothing here to act on.
pytestmark = pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def shapes() -> Graph:
    """The DCAT-AP 3.0.1 core constraints plus the class-range checks (the export types its nodes)."""
    if not DCAT_AP_SHAPES.is_dir():
        pytest.skip(f"DCAT-AP shapes are not at {DCAT_AP_SHAPES} (shared data folder absent)")
    graph = Graph()
    for name in ("shapes.ttl", "range.ttl"):
        graph.parse(DCAT_AP_SHAPES / name, format="turtle")
    return graph


def exported(client, path: str, suffix: str = "ttl") -> Graph:  # type: ignore[no-untyped-def]
    answer = client.get(f"{path}.{suffix}")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].split(";")[0] == MEDIA_TYPES[suffix]
    return Graph().parse(data=answer.content, format=PARSERS[suffix])


def conformance(graph: Graph, shapes: Graph) -> tuple[bool, Graph, str]:
    conforms, report, text = validate(graph, shacl_graph=shapes, inference="none", allow_warnings=False)
    assert isinstance(report, Graph)
    return bool(conforms), report, str(text)


def dataset_codes(graph: Graph) -> set[str]:
    return {
        str(code)
        for dataset in graph.subjects(RDF.type, DCAT.Dataset)
        for code in graph.objects(dataset, DCTERMS.identifier)
    }


def test_the_catalogue_reads_the_same_in_turtle_json_ld_and_rdf_xml(client, database, settings) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = published(client, world, licence="CC-BY-4.0", publish_date="2026-01-15")
    published(client, world, "stats-income", name="居民收入", name_en=None, update_cycle="quarterly")

    turtle, json_ld, rdf_xml = (exported(client, "/catalog", suffix) for suffix in ("ttl", "jsonld", "rdf"))
    assert isomorphic(turtle, json_ld) and isomorphic(turtle, rdf_xml)
    assert isinstance(client.get("/catalog.jsonld").json()["@context"], dict)  # inline: nothing to fetch

    base = settings.base_url.rstrip("/")
    dataset = URIRef(f"{base}/data/{code}#dataset")
    assert dataset_codes(turtle) == {code, "stats-income"}
    assert set(turtle.objects(dataset, DCTERMS.title)) == {
        Literal("各区常住人口", lang="zh"),
        Literal("Resident population by district", lang="en"),
    }
    assert set(turtle.objects(dataset, DCAT.keyword)) == {Literal("人口"), Literal("老龄化")}
    assert turtle.value(dataset, DCTERMS.issued) == Literal(date(2026, 1, 15))
    assert turtle.value(dataset, DCTERMS.accrualPeriodicity) == URIRef(
        "http://publications.europa.eu/resource/authority/frequency/ANNUAL"
    )
    assert turtle.value(dataset, DCTERMS.license) == URIRef("https://creativecommons.org/licenses/by/4.0/")
    assert turtle.value(dataset, DCAT.landingPage) == URIRef(f"{base}/data/{code}")
    publisher = turtle.value(dataset, DCTERMS.publisher)
    assert (publisher, RDF.type, FOAF.Agent) in turtle and turtle.value(publisher, FOAF.name) is not None

    downloads = {
        str(turtle.value(distribution, DCAT.mediaType)): turtle.value(distribution, DCAT.downloadURL)
        for distribution in turtle.objects(dataset, DCAT.distribution)
    }
    assert downloads == {
        "http://www.iana.org/assignments/media-types/text/csv": URIRef(f"{base}/data/{code}.csv"),
        "http://www.iana.org/assignments/media-types/application/json": URIRef(f"{base}/data/{code}.json"),
    }
    assert client.get(f"/data/{code}.csv").status_code == 200  # the download URL is the portal's

    catalog = next(turtle.subjects(RDF.type, DCAT.Catalog))
    assert turtle.value(catalog, DCTERMS.publisher) is not None
    assert set(turtle.objects(catalog, DCAT.dataset)) == set(turtle.subjects(RDF.type, DCAT.Dataset))


def test_the_catalogue_conforms_to_the_dcat_ap_shapes(client, database, shapes) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    published(client, world, licence="CC-BY-4.0", publish_date="2026-01-15")
    published(client, world, "stats-income", name="居民收入", name_en=None, licence="本市政府数据开放许可")
    published(client, world, "stats-births", name="出生人口", update_cycle="realtime", keywords=[])

    for path in ("/catalog", "/data/stats-income/dataset"):
        conforms, _report, text = conformance(exported(client, path), shapes)
        assert conforms, text


def test_a_dataset_without_a_description_fails_the_shapes(client, database, settings, shapes) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    published(client, world)
    code = published(client, world, "stats-income", name="居民收入", summary="")

    conforms, report, text = conformance(exported(client, "/catalog"), shapes)
    assert not conforms
    failures = {
        (report.value(result, SH.focusNode), report.value(result, SH.resultPath))
        for result in report.subjects(RDF.type, SH.ValidationResult)
    }
    dataset = URIRef(f"{settings.base_url.rstrip('/')}/data/{code}#dataset")
    assert failures == {(dataset, DCTERMS.description)}, text


def test_only_published_open_resources_are_exported(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = published(client, world)
    hidden = {
        "draft": registered(client, world, "stats-draft"),
        "closed": published(client, world, "stats-closed", open_class="closed"),
        "conditionally open": published(client, world, "stats-conditional", open_class="conditional"),
        "retired": published(client, world, "stats-retired"),
    }
    retiring = client.post(
        f"{API}/resources/stats-retired/status", json={"status": "retired"}, headers=world.owner
    )
    assert retiring.status_code == 200, retiring.text

    assert dataset_codes(exported(client, "/catalog")) == {code}
    assert dataset_codes(exported(client, f"/data/{code}/dataset", "jsonld")) == {code}
    for why, hidden_code in hidden.items():
        for suffix in MEDIA_TYPES:
            answer = client.get(f"/data/{hidden_code}/dataset.{suffix}")
            assert answer.status_code == 404, why
    assert client.get("/data/no-such-code/dataset.ttl").status_code == 404
    assert client.get(f"/data/{code}/dataset.xml").status_code == 404
    assert client.get("/catalog.n3").status_code == 404
