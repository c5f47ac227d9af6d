"""The DCAT-AP 3 export at its own paths (harvesters expect them there, not under /api/v1): the whole
open-data catalogue at /catalog.{ttl,jsonld,rdf}, one open resource at
/data/{code}/dataset.{ttl,jsonld,rdf}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from rdflib import Graph

from cityhub.domains.exchange import dcat
from cityhub.domains.exchange.settings import ExchangeSettings
from cityhub.kernel.errors import NotFound
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.settings import domain_settings
from cityhub.kernel.web import AppSettings, DbSession, PublicRateLimited

router = APIRouter(tags=["dcat"], dependencies=[PublicRateLimited])


def _rdf_format(suffix: str) -> str:
    if suffix not in dcat.FORMATS:
        raise NotFound(_("Formats are ttl, jsonld and rdf."))
    return suffix


RdfSuffix = Annotated[str, Depends(_rdf_format)]


def _site(settings: AppSettings) -> dcat.Site:
    return dcat.Site(settings.base_url, domain_settings(ExchangeSettings).catalogue_publisher)


PublishedAt = Annotated[dcat.Site, Depends(_site)]


@router.get("/catalog.{suffix}", summary="The open-data catalogue as DCAT-AP 3")
def catalog(session: DbSession, site: PublishedAt, suffix: RdfSuffix) -> Response:
    """Every published open resource, in Turtle (ttl), JSON-LD (jsonld) or RDF/XML (rdf)."""
    return _rdf_response(dcat.catalogue_graph(session, site), suffix)


@router.get("/data/{code}/dataset.{suffix}", summary="One open resource as a DCAT-AP 3 dataset")
def dataset(session: DbSession, site: PublishedAt, code: str, suffix: RdfSuffix) -> Response:
    """A published open resource with its distributions; 404 for any other code."""
    return _rdf_response(dcat.dataset_graph(session, site, code), suffix)


def _rdf_response(graph: Graph, suffix: str) -> Response:
    return Response(dcat.serialize(graph, suffix), media_type=dcat.FORMATS[suffix].media_type)
