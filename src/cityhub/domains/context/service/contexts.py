"""Stored @contexts (clause 5.13): contexts hosted by the broker under ``/ngsi-ld/v1/jsonldContexts/{id}``.

A hosted context is a ``StoredContext`` row. The process that adds one registers it in its resolver at once;
the other processes find it on their first use of its URL through the resolver's local source, which reads
the row by id (no HTTP round trip to ourselves) and keeps it ``LOCAL_SOURCE_TTL_SECONDS``: a context deleted
in one process stops resolving in the others within that time (the deleting process forgets it at once).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from cityhub.domains.context.errors import BadRequestData, ResourceNotFound
from cityhub.domains.context.jsonld import ContextResolver, JsonLdContextError
from cityhub.domains.context.jsonld.resolver import LocalSource, set_local_source_factory
from cityhub.domains.context.models import StoredContext
from cityhub.kernel.db import utcnow
from cityhub.kernel.settings import Settings

CONTEXTS_PATH = "/ngsi-ld/v1/jsonldContexts/"
HOSTED = "Hosted"
CACHED = "Cached"
IMPLICIT = "ImplicitlyCreated"
KINDS = (HOSTED, CACHED, IMPLICIT)
_HOSTED_URL = re.compile(r"^https?://[^/]+" + re.escape(CONTEXTS_PATH) + r"([0-9a-f]{32})$")


@dataclass(frozen=True)
class ContextInfo:
    """The clause 5.2.x "@context information" of one stored context."""

    url: str
    local_id: str
    kind: str
    created_at: str

    def as_json(self) -> dict[str, Any]:
        return {"URL": self.url, "localId": self.local_id, "kind": self.kind, "timestamp": self.created_at}


def add_context(session: Session, resolver: ContextResolver, body: Any, base_url: str) -> StoredContext:
    """Host ``body`` (``{"@context": ...}``) after checking that it resolves; registered in this process."""
    if not isinstance(body, dict) or "@context" not in body:
        raise BadRequestData('a context to host must be a JSON object with an "@context" member')
    try:
        resolver.resolve(body["@context"])
    except JsonLdContextError as exc:
        raise BadRequestData(f"invalid @context: {exc}") from None
    local_id = uuid.uuid4().hex
    row = StoredContext(
        id=local_id,
        url=base_url.rstrip("/") + CONTEXTS_PATH + local_id,
        kind=HOSTED,
        document={"@context": body["@context"]},
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    resolver.register(row.url, row.document)
    return row


def list_contexts(session: Session, kind: str | None = None) -> list[StoredContext]:
    if kind is not None and kind not in KINDS:
        raise BadRequestData(f"kind must be one of {', '.join(KINDS)}")
    statement = select(StoredContext).order_by(StoredContext.created_at, StoredContext.id)
    if kind is not None:
        statement = statement.where(StoredContext.kind == kind)
    return list(session.scalars(statement))


def get_context(session: Session, context_id: str) -> StoredContext:
    """By local id, or by URL (clients may name a context by the URL they use)."""
    row = (
        session.get(StoredContext, context_id)
        or session.scalars(select(StoredContext).where(StoredContext.url == context_id)).first()
    )
    if row is None:
        raise ResourceNotFound(f"no stored @context {context_id}")
    return row


def delete_context(session: Session, resolver: ContextResolver, context_id: str, *, reload: bool) -> None:
    """Delete a hosted context; ``reload`` (cached contexts only) drops the copy so it is downloaded anew."""
    row = (
        session.get(StoredContext, context_id)
        or session.scalars(select(StoredContext).where(StoredContext.url == context_id)).first()
    )
    if reload:
        if row is not None and row.kind == HOSTED:
            raise BadRequestData("reload applies to cached contexts; a hosted context has no origin")
        resolver.forget(row.url if row is not None else context_id)
        return
    if row is None:
        raise ResourceNotFound(f"no stored @context {context_id}")
    session.delete(row)
    session.flush()
    resolver.unregister(row.url)


def info_of(row: StoredContext) -> ContextInfo:
    return ContextInfo(row.url, row.id, row.kind, row.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"))


def hosted_source(settings: Settings) -> LocalSource:
    """The resolver's local source: a hosted context URL (any host name of ours) read from the database.

    Lookups happen only on a resolver miss, so a connection per lookup (NullPool) costs nothing worth
    pooling and keeps no idle connection per resolver.
    """
    engine: Engine | None = None

    def load(url: str) -> dict[str, Any] | None:
        nonlocal engine
        match = _HOSTED_URL.match(url)
        if match is None:
            return None
        if engine is None:
            engine = create_engine(settings.resolved_database_url, poolclass=NullPool)
        with Session(engine) as session:
            row = session.get(StoredContext, match.group(1))
            return dict(row.document) if row is not None and row.kind == HOSTED else None

    return load


set_local_source_factory(hosted_source)
