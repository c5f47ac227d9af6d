"""The open-data catalogue as DCAT-AP 3: one dcat:Catalog of the platform whose datasets are the published
open resources, each with its provider department as publisher and a distribution per portal download (CSV,
JSON). Controlled values come from the vocabularies DCAT-AP names (EU frequencies and file types, IANA media
types); every linked node carries its rdf:type, so the export also meets the shapes' class-range checks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from rdflib import RDF, RDFS, XSD, BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF
from sqlalchemy.orm import Session

from cityhub.domains.exchange.models import Resource
from cityhub.domains.exchange.service import catalogue
from cityhub.domains.identity import get_organization

FREQUENCY = Namespace("http://publications.europa.eu/resource/authority/frequency/")
FILE_TYPE = Namespace("http://publications.europa.eu/resource/authority/file-type/")
MEDIA_TYPE = Namespace("http://www.iana.org/assignments/media-types/")

# A resource's update cycle (schemas.UpdateCycle) -> its concept in the EU frequency vocabulary.
FREQUENCIES = {
    "realtime": FREQUENCY.UPDATE_CONT,
    "daily": FREQUENCY.DAILY,
    "weekly": FREQUENCY.WEEKLY,
    "monthly": FREQUENCY.MONTHLY,
    "quarterly": FREQUENCY.QUARTERLY,
    "yearly": FREQUENCY.ANNUAL,
    "irregular": FREQUENCY.IRREG,
}

# Licences as people write them (SPDX identifiers, keys as _licence_key reads them) -> their own URIs.
LICENCES = {
    "cc-by-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "cc-by-sa-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "cc-by-nc-4.0": "https://creativecommons.org/licenses/by-nc/4.0/",
    "cc-by-nd-4.0": "https://creativecommons.org/licenses/by-nd/4.0/",
    "cc0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "odc-by-1.0": "https://opendatacommons.org/licenses/by/1-0/",
    "odbl-1.0": "https://opendatacommons.org/licenses/odbl/1-0/",
    "pddl-1.0": "https://opendatacommons.org/licenses/pddl/1-0/",
}

CATALOG_TITLES = (Literal("开放数据目录", lang="zh"), Literal("Open data catalogue", lang="en"))
CATALOG_DESCRIPTIONS = (
    Literal("各部门无条件开放的政务数据资源。", lang="zh"),
    Literal("The government data resources the city's departments open to everyone.", lang="en"),
)

NOT_IN_IRI = re.compile(r'[\s<>"{}|\\^`]')

# The JSON-LD export compacts with this inline context, so neither writing nor reading it fetches anything.
JSONLD_CONTEXT = {
    "dcat": str(DCAT),
    "dct": str(DCTERMS),
    "foaf": str(FOAF),
    "rdfs": str(RDFS),
    "xsd": str(XSD),
}


@dataclass(frozen=True)
class RdfFormat:
    rdflib_name: str
    media_type: str


# The suffix of an export's path -> how it is written and served.
FORMATS = {
    "ttl": RdfFormat("turtle", "text/turtle"),
    "jsonld": RdfFormat("json-ld", "application/ld+json"),
    "rdf": RdfFormat("xml", "application/rdf+xml"),
}


@dataclass(frozen=True)
class Download:
    """One of the portal's downloads of a resource's current data (views.download), as a distribution."""

    extension: str
    media_type: str
    file_type: str  # its code in the EU file-type vocabulary


DOWNLOADS = (Download("csv", "text/csv", "CSV"), Download("json", "application/json", "JSON"))


@dataclass(frozen=True)
class Site:
    """Where the platform is published (``base_url``) and who publishes it: the addresses of every node."""

    base_url: str
    publisher: str

    def url(self, path: str) -> URIRef:
        return URIRef(self.base_url.rstrip("/") + path)

    @property
    def catalog(self) -> URIRef:
        return self.url("/data#catalog")

    @property
    def operator(self) -> URIRef:
        return self.url("/#publisher")

    def dataset(self, code: str) -> URIRef:
        return self.url(f"{_portal_path(code)}#dataset")

    def landing_page(self, code: str) -> URIRef:
        return self.url(_portal_path(code))

    def distribution(self, code: str, download: Download) -> URIRef:
        return self.url(f"{_portal_path(code)}#distribution-{download.extension}")

    def download_url(self, code: str, download: Download) -> URIRef:
        return self.url(f"{_portal_path(code)}.{download.extension}")

    def department(self, code: str) -> URIRef:
        """A department is known on the portal by the list of its resources."""
        return self.url(f"/data?provider={quote(code, safe='')}#publisher")


def _portal_path(code: str) -> str:
    """The open-data portal's page of a resource (views.dataset); its downloads add the suffix."""
    return f"/data/{quote(code, safe='')}"


def catalogue_graph(session: Session, site: Site) -> Graph:
    """The whole catalogue: the platform's dcat:Catalog and every published open resource."""
    graph = new_graph()
    catalog = site.catalog
    graph.add((catalog, RDF.type, DCAT.Catalog))
    for title in CATALOG_TITLES:
        graph.add((catalog, DCTERMS.title, title))
    for description in CATALOG_DESCRIPTIONS:
        graph.add((catalog, DCTERMS.description, description))
    graph.add((catalog, DCTERMS.publisher, _agent(graph, site.operator, Literal(site.publisher))))
    graph.add((catalog, FOAF.homepage, _typed(graph, site.url("/data"), FOAF.Document)))
    for resource in session.scalars(catalogue.search(None)):
        graph.add((catalog, DCAT.dataset, _add_dataset(graph, session, site, resource)))
    return graph


def dataset_graph(session: Session, site: Site, code: str) -> Graph:
    """One published open resource as a dcat:Dataset; NotFound for any other code."""
    graph = new_graph()
    _add_dataset(graph, session, site, catalogue.visible(session, None, code))
    return graph


def serialize(graph: Graph, suffix: str) -> bytes:
    """The graph in the format of a FORMATS suffix, UTF-8."""
    options: dict[str, Any] = {"context": JSONLD_CONTEXT, "auto_compact": True} if suffix == "jsonld" else {}
    return graph.serialize(format=FORMATS[suffix].rdflib_name, encoding="utf-8", **options)


def new_graph() -> Graph:
    """An empty graph that binds only the prefixes the export uses (rdflib binds dozens by default)."""
    graph = Graph(bind_namespaces="core")
    for prefix, namespace in JSONLD_CONTEXT.items():
        graph.bind(prefix, namespace)
    return graph


def _add_dataset(graph: Graph, session: Session, site: Site, resource: Resource) -> URIRef:
    dataset = site.dataset(resource.code)
    graph.add((dataset, RDF.type, DCAT.Dataset))
    graph.add((dataset, DCTERMS.identifier, Literal(resource.code)))
    for title in _bilingual(resource.name, resource.name_en):
        graph.add((dataset, DCTERMS.title, title))
    # No summary, no description: the export does not invent one, so DCAT-AP validation points at the gap.
    if resource.summary.strip():
        graph.add((dataset, DCTERMS.description, Literal(resource.summary, lang="zh")))
    for keyword in resource.keywords:
        graph.add((dataset, DCAT.keyword, Literal(keyword)))
    graph.add((dataset, DCTERMS.publisher, _department(graph, session, site, resource.provider_org_id)))
    if resource.publish_date is not None:
        graph.add((dataset, DCTERMS.issued, Literal(resource.publish_date, datatype=XSD.date)))
    graph.add((dataset, DCTERMS.modified, Literal(resource.modified_at, datatype=XSD.dateTime)))
    frequency = FREQUENCIES.get(resource.update_cycle)
    if frequency is not None:
        graph.add((dataset, DCTERMS.accrualPeriodicity, _typed(graph, frequency, DCTERMS.Frequency)))
    landing_page = _typed(graph, site.landing_page(resource.code), FOAF.Document)
    graph.add((dataset, DCAT.landingPage, landing_page))
    licence = _licence(graph, resource.licence)
    if licence is not None:
        graph.add((dataset, DCTERMS.license, licence))
    # Downloads serve the current version: a resource whose data lives elsewhere may have none yet.
    if resource.current_version_id is not None:
        for download in DOWNLOADS:
            graph.add(
                (dataset, DCAT.distribution, _add_distribution(graph, site, resource, download, licence))
            )
    return dataset


def _add_distribution(
    graph: Graph, site: Site, resource: Resource, download: Download, licence: URIRef | BNode | None
) -> URIRef:
    distribution = site.distribution(resource.code, download)
    address = site.download_url(resource.code, download)
    graph.add((distribution, RDF.type, DCAT.Distribution))
    graph.add((distribution, DCAT.accessURL, address))
    graph.add((distribution, DCAT.downloadURL, address))
    media_type = _typed(graph, MEDIA_TYPE[download.media_type], DCTERMS.MediaType)
    graph.add((distribution, DCAT.mediaType, media_type))
    file_type = _typed(graph, FILE_TYPE[download.file_type], DCTERMS.MediaTypeOrExtent)
    graph.add((distribution, DCTERMS.format, file_type))
    if licence is not None:
        graph.add((distribution, DCTERMS.license, licence))  # DCAT-AP reads the licence on distributions
    return distribution


def _department(graph: Graph, session: Session, site: Site, organization_id: int) -> URIRef:
    department = get_organization(session, organization_id)  # the session's identity map caches repeats
    return _agent(graph, site.department(department.code), *_bilingual(department.name, department.name_en))


def _bilingual(name: str, name_en: str | None) -> list[Literal]:
    """The catalogue's names are Chinese, some with an English one beside."""
    names = [Literal(name, lang="zh")]
    if name_en:
        names.append(Literal(name_en, lang="en"))
    return names


def _agent(graph: Graph, agent: URIRef, *names: Literal) -> URIRef:
    graph.add((agent, RDF.type, FOAF.Agent))
    for name in names:
        graph.add((agent, FOAF.name, name))
    return agent


def _licence(graph: Graph, licence: str | None) -> URIRef | BNode | None:
    """The licence's URI: a known licence's own, or the one given; a licence known only by its name
    becomes a licence document with that name rather than a made-up URI."""
    name = (licence or "").strip()
    if not name:
        return None
    address = LICENCES.get(_licence_key(name)) or (name if _is_web_address(name) else None)
    if address is not None:
        return _typed(graph, URIRef(address), DCTERMS.LicenseDocument)
    document = _typed(graph, BNode(), DCTERMS.LicenseDocument)
    graph.add((document, RDFS.label, Literal(name)))
    return document


def _licence_key(name: str) -> str:
    """``CC BY 4.0``, ``cc_by_4.0`` and ``CC-BY-4.0`` are one licence."""
    return "-".join(name.lower().replace("_", " ").replace("-", " ").split())


def _is_web_address(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not NOT_IN_IRI.search(text)


def _typed(graph: Graph, node: URIRef | BNode, rdf_class: URIRef) -> URIRef | BNode:
    graph.add((node, RDF.type, rdf_class))
    return node
