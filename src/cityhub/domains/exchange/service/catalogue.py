"""The catalogue: departments register their data resources with the catalogue core fields, change them,
publish or retire them; everyone finds published resources by words and facets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, false, func, insert, or_, select
from sqlalchemy.orm import Session

from cityhub.domains.exchange import schemas
from cityhub.domains.exchange.models import Resource, ResourceTerm, Version
from cityhub.domains.exchange.service.access import (
    MANAGE,
    REQUEST,
    acts_for,
    department,
    owned_resource,
    resource_by_code,
)
from cityhub.domains.identity import Principal, get_organization
from cityhub.kernel import audit
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import Conflict, NotFound
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.textsearch import query_terms, terms_of

FIELDS = (
    "name", "name_en", "classification", "summary", "format", "sharing_class", "sharing_condition",
    "legal_basis", "open_class", "update_cycle", "publish_date", "related", "keywords", "licence",
)  # fmt: skip


def register(session: Session, principal: Principal, data: schemas.ResourceIn) -> Resource:
    """A new draft resource of one of the caller's departments."""
    provider = department(session, principal, MANAGE, data.provider)
    if session.scalar(select(Resource.id).where(Resource.code == data.code)) is not None:
        raise Conflict(
            _("A resource with the code %(code)s exists already.", code=data.code), slug="code-taken"
        )
    resource = Resource(code=data.code, provider_org_id=provider, created_by=principal.actor, status="draft")
    _fill(resource, data)
    session.add(resource)
    session.flush()
    index_terms(session, resource)
    _audit(session, principal, "exchange.resource.registered", resource, data.model_dump(mode="json"))
    return resource


def change(session: Session, principal: Principal, code: str, data: schemas.ResourceIn) -> Resource:
    """New catalogue fields for a resource (its code and provider stay; data items change only before the
    first load, since every version was validated against them)."""
    resource = owned_resource(session, principal, code)
    if data.code != code:
        raise Conflict(_("A resource keeps its code."), slug="code-fixed")
    if department(session, principal, MANAGE, data.provider) != resource.provider_org_id:
        raise Conflict(_("A resource keeps its provider."), slug="provider-fixed")
    items = [item.model_dump() for item in data.data_items]
    if items != resource.data_items and _has_versions(session, resource):
        raise Conflict(
            _("The data items cannot change once data is loaded; register a new resource."),
            slug="items-fixed",
        )
    _fill(resource, data)
    index_terms(session, resource)
    _audit(session, principal, "exchange.resource.changed", resource, data.model_dump(mode="json"))
    return resource


def set_status(session: Session, principal: Principal, code: str, status: str) -> Resource:
    """Publish a resource (it needs valid data, unless its data comes from elsewhere) or retire it."""
    resource = owned_resource(session, principal, code)
    if status == "published" and resource.current_version_id is None and resource.source == "upload":
        raise Conflict(_("Load valid data before publishing the resource."), slug="no-data")
    resource.status = status
    resource.modified_at = utcnow()
    _audit(session, principal, f"exchange.resource.{status}", resource, {})
    return resource


def _fill(resource: Resource, data: schemas.ResourceIn) -> None:
    for name in FIELDS:
        setattr(resource, name, getattr(data, name))
    resource.data_items = [item.model_dump() for item in data.data_items]
    resource.modified_at = utcnow()


def terms_of_resource(resource: Resource) -> set[str]:
    """What a search finds the resource by: the terms of its name, English name, summary, code, keywords."""
    texts = [resource.name, resource.name_en or "", resource.summary, resource.code, *resource.keywords]
    return terms_of(" ".join(texts), prefixes=True)


def index_terms(session: Session, resource: Resource) -> None:
    """Replace the resource's search terms (it has its id: flushed)."""
    session.execute(delete(ResourceTerm).where(ResourceTerm.resource_id == resource.id))
    rows = [{"term": term, "resource_id": resource.id} for term in terms_of_resource(resource)]
    if rows:
        session.execute(insert(ResourceTerm), rows)


def _has_versions(session: Session, resource: Resource) -> bool:
    return session.scalar(select(Version.id).where(Version.resource_id == resource.id).limit(1)) is not None


def _audit(
    session: Session, principal: Principal, action: str, resource: Resource, details: dict[str, Any]
) -> None:
    audit.record(
        session,
        actor=principal.actor,
        action=action,
        object_type="exchange_resource",
        object_id=resource.code,
        details=details,
    )


# -- reading ------------------------------------------------------------------------------------------------


def visible(session: Session, principal: Principal | None, code: str) -> Resource:
    """A resource the caller may see: published ones to departments, open ones to everyone, drafts to their
    provider."""
    resource = resource_by_code(session, code)
    if not _sees(principal, resource):
        raise NotFound(_("Resource %(code)s does not exist.", code=code))
    return resource


def _sees(principal: Principal | None, resource: Resource) -> bool:
    if principal is not None and acts_for(principal, MANAGE, resource.provider_org_id):
        return True
    if resource.status != "published":
        return False
    return resource.open_class == "open" or (principal is not None and principal.has(REQUEST))


def search(
    principal: Principal | None,
    words: str | None = None,
    provider_org_id: int | None = None,
    sharing_class: str | None = None,
    open_class: str | None = None,
    public_classes: tuple[str, ...] = ("open",),
) -> Select[Resource]:
    """Published resources with every term of the words (``kernel.textsearch``: Chinese cut into words,
    English words and their beginnings, in name, English name, summary, code, keywords), newest change
    first; a department's staff also see their own drafts. Those outside departments see the published
    resources of ``public_classes`` (the portal lists the conditionally open ones too)."""
    mine = sorted(principal.organizations(MANAGE)) if principal is not None else []
    statement = select(Resource)
    public = Resource.status == "published"
    if principal is None or not principal.has(REQUEST):
        public = public & Resource.open_class.in_(public_classes)
    statement = statement.where(or_(public, Resource.provider_org_id.in_(mine)) if mine else public)
    if words and words.strip():  # words of nothing findable (stop words, punctuation) find nothing
        terms = query_terms(words)
        if not terms:
            statement = statement.where(false())
        else:  # a join, not IN: SQLite then reads the few matches by id instead of every listed entry
            matching = _having_every_term(terms).subquery()
            statement = statement.join(matching, matching.c.resource_id == Resource.id)
    for column, value in (
        (Resource.provider_org_id, provider_org_id),
        (Resource.sharing_class, sharing_class),
        (Resource.open_class, open_class),
    ):
        if value is not None:
            statement = statement.where(column == value)
    return statement.order_by(Resource.modified_at.desc(), Resource.id.desc())


def _having_every_term(terms: list[str]) -> Select[int]:
    """The resources indexed under every one of ``terms`` (one index range per term)."""
    return (
        select(ResourceTerm.resource_id)
        .where(ResourceTerm.term.in_(terms))
        .group_by(ResourceTerm.resource_id)
        .having(func.count() == len(terms))
    )


def shape(session: Session, resources: Sequence[Resource]) -> list[schemas.ResourceOut]:
    versions = current_versions(session, [r.current_version_id for r in resources if r.current_version_id])
    providers: dict[int, Any] = {}
    shaped = []
    for resource in resources:
        if resource.provider_org_id not in providers:
            providers[resource.provider_org_id] = get_organization(session, resource.provider_org_id)
        provider = providers[resource.provider_org_id]
        version = versions.get(resource.current_version_id or 0)
        shaped.append(
            schemas.ResourceOut.model_validate(
                {
                    **{
                        name: getattr(resource, name)
                        for name in (*FIELDS, "id", "code", "data_items", "status")
                    },
                    "provider": provider.code,
                    "provider_name": provider.name,
                    "current_version": version.number if version else None,
                    "rows": version.row_count if version else 0,
                    "created_at": resource.created_at,
                    "modified_at": resource.modified_at,
                    "open_rules": resource.open_rules or {},
                    "source": resource.source,
                    "polled_at": resource.polled_at,
                }
            )
        )
    return shaped


def current_versions(session: Session, ids: list[int]) -> dict[int, Version]:
    if not ids:
        return {}
    return {version.id: version for version in session.scalars(select(Version).where(Version.id.in_(ids)))}
