"""The open-data catalogue as CKAN sees it: packages are the published open resources, organizations the
departments that provide them, and each package's one CKAN resource is the CSV download of its current
version (``/data/{code}.csv``), whose id stays the same when a new version is loaded (``{code}.csv``) as a
CKAN resource keeps its id when its file is replaced.

Only what anyone may see is here: every statement starts from the catalogue's anonymous search, and a
closed, conditional, draft or retired resource is "not found", exactly as on the portal.
"""

from __future__ import annotations

import json
import shlex
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from operator import attrgetter
from typing import Any, NamedTuple
from urllib.parse import quote

import orjson
from sqlalchemy import ColumnElement, String, Text, cast, false, func, not_, select, type_coerce
from sqlalchemy.orm import Session

from cityhub.domains.exchange.models import Resource, Version
from cityhub.domains.exchange.service import catalogue
from cityhub.domains.identity import get_organization, get_organization_by_code, organizations_by_id
from cityhub.kernel import jsondoc
from cityhub.kernel.errors import NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _

DOWNLOAD_SUFFIX = ".csv"
NO_LICENCE = "notspecified"
FACET_LIMIT = 50


@dataclass(frozen=True)
class Site:
    """Where the portal is published: CKAN gives absolute addresses for downloads."""

    base_url: str

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def download(self, code: str) -> str:
        return self.url(f"/data/{quote(code)}{DOWNLOAD_SUFFIX}")


def download_id(code: str) -> str:
    """The CKAN resource id of a package's download."""
    return code + DOWNLOAD_SUFFIX


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


# -- packages ------------------------------------------------------------------------------------------------


def open_package(session: Session, name: str) -> Resource:
    """The open resource called ``name`` (its code); 404 for any resource not open to everyone."""
    return catalogue.visible(session, None, name)


def package_names(session: Session, limit: int | None, offset: int) -> list[str]:
    statement = catalogue.search(None).with_only_columns(Resource.code).order_by(None).order_by(Resource.code)
    return list(session.scalars(statement.limit(limit).offset(offset)))


def package_show(session: Session, site: Site, name: str) -> dict[str, Any]:
    return packages(session, site, [open_package(session, name)])[0]


def packages(session: Session, site: Site, resources: Sequence[Resource]) -> list[dict[str, Any]]:
    """CKAN package dicts (with their organization and download) of open resources."""
    versions = catalogue.current_versions(
        session, [r.current_version_id for r in resources if r.current_version_id]
    )
    _remember_organizations(session, (r.provider_org_id for r in resources))
    return [
        _package(
            site,
            resource,
            _organization(session, resource.provider_org_id),
            versions.get(resource.current_version_id or 0),
        )
        for resource in resources
    ]


def _package(
    site: Site, resource: Resource, organization: dict[str, Any], version: Version | None
) -> dict[str, Any]:
    resources = [_download(site, resource, version)] if version is not None else []
    tags = [{"name": keyword, "display_name": keyword, "state": "active"} for keyword in resource.keywords]
    return {
        "id": resource.code,
        "name": resource.code,
        "title": resource.name,
        "notes": resource.summary,
        "url": site.url(f"/data/{quote(resource.code)}"),
        "version": str(version.number) if version is not None else None,
        "license_id": resource.licence or NO_LICENCE,
        "license_title": resource.licence or _("License not specified"),
        "owner_org": organization["id"],
        "organization": organization,
        "tags": tags,
        "num_tags": len(tags),
        "groups": [],
        "extras": _extras(resource),
        "resources": resources,
        "num_resources": len(resources),
        "metadata_created": ckan_time(resource.created_at),
        "metadata_modified": ckan_time(resource.modified_at),
        "state": "active",
        "type": "dataset",
        "private": False,
    }


def _extras(resource: Resource) -> list[dict[str, str]]:
    """The catalogue fields CKAN has no key for, as CKAN extras (strings; lists as JSON)."""
    values = {
        "classification": json.dumps(resource.classification, ensure_ascii=False),
        "update_cycle": resource.update_cycle,
        "sharing_class": resource.sharing_class,
        "open_class": resource.open_class,
        "publish_date": resource.publish_date.isoformat() if resource.publish_date else None,
        "title_en": resource.name_en,
        "related": json.dumps(resource.related, ensure_ascii=False) if resource.related else None,
    }
    return [{"key": key, "value": value} for key, value in values.items() if value is not None]


def _download(site: Site, resource: Resource, version: Version) -> dict[str, Any]:
    return {
        "id": download_id(resource.code),
        "package_id": resource.code,
        "name": resource.code + DOWNLOAD_SUFFIX,
        "description": version.note,
        "format": "CSV",
        "mimetype": "text/csv",
        "url": site.download(resource.code),
        "url_type": None,
        "datastore_active": True,
        "position": 0,
        "state": "active",
        "created": ckan_time(version.loaded_at),
        "last_modified": ckan_time(version.loaded_at),
        "version": version.number,  # which of the resource's versions the download serves
        "rows": version.row_count,
    }


def ckan_time(moment: datetime) -> str:
    """A time as CKAN writes it: UTC without an offset."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat()


# -- resources (downloads) -----------------------------------------------------------------------------------


def open_download(session: Session, resource_id: str) -> tuple[Resource, Version]:
    """The open resource and current version behind a download id; 404 for anything else."""
    code = resource_id.removesuffix(DOWNLOAD_SUFFIX)
    missing = NotFound(_("Resource %(id)s does not exist.", id=resource_id))
    if code == resource_id:
        raise missing
    try:
        resource = open_package(session, code)
    except NotFound:
        raise missing from None
    version = session.get(Version, resource.current_version_id) if resource.current_version_id else None
    if version is None:
        raise missing
    return resource, version


def resource_show(session: Session, site: Site, resource_id: str) -> dict[str, Any]:
    resource, version = open_download(session, resource_id)
    return _download(site, resource, version)


# -- organizations -------------------------------------------------------------------------------------------


def _remember_organizations(session: Session, organization_ids: Iterable[int]) -> None:
    """Look up, in one query, the departments the session has not seen yet (a page's, a facet's)."""
    known: dict[int, dict[str, Any]] = session.info.setdefault("ckan_organizations", {})
    missing = set(organization_ids) - known.keys()
    for organization_id, department in organizations_by_id(session, missing).items():
        known[organization_id] = _organization_dict(department)


def _organization(session: Session, organization_id: int) -> dict[str, Any]:
    """A department as a CKAN organization, looked up once per session (its identity map holds rows weakly,
    so without this a page of packages or a facet would ask for the same department again and again)."""
    known: dict[int, dict[str, Any]] = session.info.setdefault("ckan_organizations", {})
    if organization_id not in known:
        known[organization_id] = _organization_dict(get_organization(session, organization_id))
    return known[organization_id]


def _organization_dict(department: Any) -> dict[str, Any]:
    return {
        "id": department.code,
        "name": department.code,
        "title": department.name,
        "display_name": department.name,
        "description": "",
        "image_url": "",
        "type": "organization",
        "is_organization": True,
        "state": "active",
        "approval_status": "approved",
        "created": ckan_time(department.created_at),
    }


def _package_counts(session: Session) -> dict[int, int]:
    """Open packages per providing department (a department with none is no organization of the portal)."""
    opened = catalogue.search(None).order_by(None).subquery()
    statement = select(opened.c.provider_org_id, func.count()).group_by(opened.c.provider_org_id)
    return {organization_id: int(count) for organization_id, count in session.execute(statement)}


ORGANIZATION_SORTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "name": lambda organization: organization["name"],
    "title": lambda organization: organization["title"],
    "package_count": lambda organization: organization["package_count"],
}


def organizations(session: Session, sort: str | None, limit: int | None, offset: int) -> list[dict[str, Any]]:
    """The providing departments with their package counts, sorted as asked (CKAN's default: by title)."""
    found = [
        {**_organization(session, organization_id), "package_count": count}
        for organization_id, count in _package_counts(session).items()
    ]
    for key, descending in reversed(sort_clauses(sort or "title asc", ORGANIZATION_SORTS)):
        found.sort(key=ORGANIZATION_SORTS[key], reverse=descending)
    return found[offset:][:limit]


def organization_show(session: Session, site: Site, name: str, include_datasets: bool) -> dict[str, Any]:
    department_id = _department_id(session, name)
    count = _package_counts(session).get(department_id or 0)
    if department_id is None or count is None:
        raise NotFound(_("Organization %(name)s does not exist.", name=name))
    organization = {**_organization(session, department_id), "package_count": count}
    if include_datasets:
        query = PackageQuery(filters=[f"organization:{name}"], rows=MAX_ROWS)
        organization["packages"] = package_search(session, site, query)["results"]
    return organization


# -- package_search ------------------------------------------------------------------------------------------

MAX_ROWS = 1000
PACKAGE_SORTS: dict[str, Any] = {
    "name": Resource.code,
    "title": Resource.name,
    "metadata_modified": Resource.modified_at,
    "metadata_created": Resource.created_at,
}
# The catalogue's own order, newest change first, after whatever a search asks for
TIE_BREAKERS = (("metadata_modified", Resource.modified_at.desc()), ("id", Resource.id.desc()))
RELEVANCE = "score"  # no ranking here: the default order (newest change first) stands in for it
# Orders the page can be cut from the matches in memory (times and ids compare alike everywhere; names
# would depend on the database's collation)
IN_MEMORY_SORTS: dict[str, Callable[[Any], Any]] = {
    "metadata_modified": attrgetter("modified_at"),
    "metadata_created": attrgetter("created_at"),
    "id": attrgetter("id"),
}
DEFAULT_SORT = "score desc, metadata_modified desc"
MATCH_ALL = "*:*"


@dataclass
class PackageQuery:
    """A package_search: words (``q``), filter terms (``fq``, ``field:value``), order, page and facets."""

    words: list[str] = field(default_factory=list)
    filters: list[str] = field(default_factory=list)
    sort: str | None = None
    rows: int = 10
    start: int = 0
    facet_fields: list[str] = field(default_factory=list)
    facet_limit: int = FACET_LIMIT


def parse_q(q: str | None) -> tuple[list[str], list[str]]:
    """``q`` split into free words and ``field:value`` terms (which filter like ``fq``); ``*:*`` is all."""
    words: list[str] = []
    terms: list[str] = []
    for term in _tokens(q or "", "q"):
        if term == MATCH_ALL:
            continue
        if ":" in term.lstrip("+-"):
            terms.append(term)
        else:
            words.append(term.removeprefix("+"))  # Solr's "must have": every word must be there anyway
    return words, terms


def parse_fq(fq: str | None, fq_list: Iterable[str] = ()) -> list[str]:
    """The ``field:value`` terms of ``fq`` and ``fq_list`` (a Solr-like subset: ``+``/``-`` and quotes)."""
    terms = [*_tokens(fq or "", "fq"), *(term for each in fq_list for term in _tokens(each, "fq_list"))]
    return [term for term in terms if term != MATCH_ALL]


def _tokens(text: str, parameter: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise ValidationProblem(
            _("Cannot read %(parameter)s: %(error)s", parameter=parameter, error=str(exc)), field=parameter
        ) from exc


def package_search(session: Session, site: Site, query: PackageQuery) -> dict[str, Any]:
    """One read of the matching packages gives the count, the facets and — for an order by time, CKAN's
    default — the page (sorted here: running the term lookup again to sort would cost more)."""
    statement = catalogue.search(None, " ".join(query.words) or None)
    statement = statement.where(*(_filter(session, term) for term in query.filters))
    # Keywords come as their JSON text, decoded here: the JSON type's per-value processing would cost more
    # than the counting.
    matches = [
        Match(id_, modified, created, provider, orjson.loads(keywords) if keywords else [], licence, version)
        for id_, modified, created, provider, keywords, licence, version in session.execute(
            statement.with_only_columns(
                Resource.id,
                # As the database gives them (SQLite: fixed-width ISO text; PostgreSQL: datetimes): they sort
                # as the times do, without a UTC datetime built for each of thousands of matches
                type_coerce(Resource.modified_at, String),
                type_coerce(Resource.created_at, String),
                Resource.provider_org_id,
                cast(Resource.keywords, Text),
                Resource.licence,
                Resource.current_version_id,
            ).order_by(None)
        )
    ]
    facets = {name: _facet(session, matches, name, query.facet_limit) for name in query.facet_fields}
    clauses = sort_clauses(query.sort or DEFAULT_SORT, {**PACKAGE_SORTS, RELEVANCE: None})
    if all(key == RELEVANCE or key in IN_MEMORY_SORTS for key, _descending in clauses):
        page = _sorted(matches, clauses)[query.start : query.start + query.rows]
        by_id = {
            r.id: r for r in session.scalars(select(Resource).where(Resource.id.in_([m.id for m in page])))
        }
        found = [by_id[m.id] for m in page]
    else:
        ordered = statement.order_by(None).order_by(*_package_order(clauses))
        found = list(session.scalars(ordered.limit(query.rows).offset(query.start)))
    return {
        "count": len(matches),
        "results": packages(session, site, found),
        "sort": query.sort or DEFAULT_SORT,
        "facets": {name: {item["name"]: item["count"] for item in items} for name, items in facets.items()},
        "search_facets": {name: {"title": name, "items": items} for name, items in facets.items()},
    }


def _filter(session: Session, term: str) -> ColumnElement[bool]:
    """One ``[+|-]field:value`` term as a condition on the resource."""
    negated = term.startswith("-")
    name, _colon, value = term.lstrip("+-").partition(":")
    value = value.strip('"')
    conditions: dict[str, Callable[[], ColumnElement[bool]]] = {
        "organization": lambda: _provided_by(session, value),
        "owner_org": lambda: _provided_by(session, value),
        "tags": lambda: jsondoc.array_contains(Resource.keywords, value, _dialect(session)),
        "name": lambda: Resource.code == value,
        "id": lambda: Resource.code == value,
        "license_id": lambda: func.coalesce(Resource.licence, NO_LICENCE) == value,
        "res_format": lambda: _has_download(value),
    }
    if name not in conditions:
        raise ValidationProblem(
            _("Cannot filter by %(field)s; filter by %(fields)s.", field=name, fields=", ".join(conditions)),
            field="fq",
        )
    condition = conditions[name]()
    return not_(condition) if negated else condition


def _has_download(file_format: str) -> ColumnElement[bool]:
    """A package's one download is CSV, there once data is loaded."""
    return Resource.current_version_id.is_not(None) if file_format.upper() == "CSV" else false()


def _provided_by(session: Session, code: str) -> ColumnElement[bool]:
    department_id = _department_id(session, code)
    return Resource.provider_org_id == department_id if department_id is not None else false()


def _department_id(session: Session, code: str) -> int | None:
    """The id of the department with this code (None: no such department, the filter matches nothing)."""
    try:
        return get_organization_by_code(session, code).id
    except NotFound:
        return None


def _package_order(clauses: list[tuple[str, bool]]) -> list[Any]:
    order = [
        PACKAGE_SORTS[key].desc() if descending else PACKAGE_SORTS[key].asc()
        for key, descending in clauses
        if key != RELEVANCE
    ]
    # The catalogue's order breaks ties (not repeated: a repeated key makes SQLite sort what the listing
    # index gives in order).
    asked = {key for key, _descending in clauses}
    ties = [clause for key, clause in TIE_BREAKERS if key not in asked]
    return [*order, *ties]


def _sorted(matches: list[Match], clauses: list[tuple[str, bool]]) -> list[Match]:
    """The matches in the order of ``clauses`` (times only), then newest change and id first, as the SQL
    order gives them: stable sorts from the last key to the first."""
    asked = [(key, descending) for key, descending in clauses if key != RELEVANCE]
    keys = [*asked, *((key, True) for key, _clause in TIE_BREAKERS if key not in {k for k, _d in asked})]
    ordered = list(matches)
    for key, descending in reversed(keys):
        ordered.sort(key=IN_MEMORY_SORTS[key], reverse=descending)
    return ordered


def sort_clauses(sort: str, known: Collection[str]) -> list[tuple[str, bool]]:
    """``"a asc, b desc"`` (names may be double-quoted) as (name, descending) pairs; an unknown name is a
    Validation Error."""
    clauses = []
    for clause in filter(None, (part.strip() for part in sort.split(","))):
        name, _space, direction = clause.partition(" ")
        name, direction = name.strip('"'), direction.strip().lower() or "asc"
        if name not in known or direction not in ("asc", "desc"):
            raise ValidationProblem(
                _("Cannot sort by %(clause)s; sort by %(fields)s.", clause=clause, fields=", ".join(known)),
                field="sort",
            )
        clauses.append((name, direction == "desc"))
    return clauses


# -- facets --------------------------------------------------------------------------------------------------

FACETS = ("organization", "tags", "license_id", "res_format")


class Match(NamedTuple):
    """What the count, the facets and an order by time need of one matching package."""

    id: int
    modified_at: Any  # what sorts as the time: see package_search
    created_at: Any
    provider_org_id: int
    keywords: list[str]
    licence: str | None
    current_version_id: int | None


def check_facet_fields(names: list[str]) -> None:
    unknown = [name for name in names if name not in FACETS]
    if unknown:
        raise ValidationProblem(
            _(
                "Cannot count %(fields)s; count %(known)s.",
                fields=", ".join(unknown),
                known=", ".join(FACETS),
            ),
            field="facet.field",
        )


def _facet(session: Session, matches: Sequence[Match], name: str, limit: int) -> list[dict[str, Any]]:
    """The values of one facet over the matching packages with their counts, most frequent first (ties by
    value); ``limit`` < 0: all of them."""
    if name == "res_format":  # every package with data has the one download, a CSV file
        count = sum(1 for match in matches if match.current_version_id is not None)
        return [{"name": "CSV", "display_name": "CSV", "count": count}] if count and limit != 0 else []
    counter: Counter[Any] = Counter(
        chain.from_iterable(match.keywords for match in matches)
        if name == "tags"
        else (match.provider_org_id for match in matches)
        if name == "organization"
        else (match.licence or NO_LICENCE for match in matches)
    )
    counts = sorted(counter.items(), key=lambda pair: (-pair[1], pair[0]))
    if limit >= 0:
        counts = counts[:limit]
    if name == "organization":
        _remember_organizations(session, (key for key, _count in counts))
    return [_facet_item(session, name, key, count) for key, count in counts]


def _facet_item(session: Session, name: str, key: Any, count: int) -> dict[str, Any]:
    if name == "organization":
        organization = _organization(session, key)
        return {"name": organization["name"], "display_name": organization["title"], "count": count}
    return {"name": key, "display_name": key, "count": count}
