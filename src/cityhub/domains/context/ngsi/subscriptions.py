"""``/ngsi-ld/v1/subscriptions`` (clause 5.8): create, query, retrieve, update, delete."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Response

from cityhub.domains.context.ngsi.common import (
    SUBSCRIBE,
    Call,
    NgsiRoute,
    body_of,
    location,
    read_call,
    write_call,
)
from cityhub.domains.context.service.query import check_paging
from cityhub.domains.context.store.document import check_entity_id
from cityhub.domains.context.subscriptions import store
from cityhub.domains.context.subscriptions.document import (
    SubscriptionInput,
    merge_fragment,
    parse_subscription,
)
from cityhub.kernel.audit import record
from cityhub.kernel.web import DbSession

router = APIRouter(route_class=NgsiRoute)


def _notification_context(call: Call, given: dict[str, Any], current: Any) -> Any:
    """The @context notifications are compacted with: ``jsonldContext`` if given, else the creator's."""
    context = given.get("jsonldContext", current)
    call.resolver.mapper(context)  # an unavailable context fails now, not at every notification
    return context


@router.post("/subscriptions", status_code=201)
def create(session: DbSession, call: Call = write_call(SUBSCRIBE)) -> Response:
    given = parse_subscription(body_of(call), call.mapper)
    context = _notification_context(call, given.document, call.mapper.context.user_context)
    store.create_subscription(session, call.tenant, given, context, call.principal.actor)
    _audit(session, call, "context.subscription.create", given.subscription_id, given)
    return Response(status_code=201, headers=location("subscriptions", given.subscription_id))


@router.get("/subscriptions")
def query(
    session: DbSession,
    call: Call = read_call(SUBSCRIBE),
    limit: Annotated[int, Query()] = 20,
    offset: Annotated[int, Query()] = 0,
    count: bool = False,
) -> Response:
    check_paging(limit, offset, count=count)
    page = store.list_subscriptions(session, call.tenant, limit=limit, offset=offset)
    headers = {"NGSILD-Results-Count": str(page.count)} if count else {}
    return call.respond(
        [store.shown_subscription(row, call.mapper) for row in page.subscriptions], headers=headers
    )


@router.get("/subscriptions/{subscription_id}")
def retrieve(subscription_id: str, session: DbSession, call: Call = read_call(SUBSCRIBE)) -> Response:
    check_entity_id(subscription_id)
    row = store.require_subscription(session, call.tenant, subscription_id)
    return call.respond(store.shown_subscription(row, call.mapper))


@router.patch("/subscriptions/{subscription_id}", status_code=204)
def update(subscription_id: str, session: DbSession, call: Call = write_call(SUBSCRIBE)) -> Response:
    check_entity_id(subscription_id)
    row = store.require_subscription(session, call.tenant, subscription_id)
    merged = merge_fragment(row.document, body_of(call), call.mapper)
    given = parse_subscription(merged, call.mapper, creating=False)
    context = _notification_context(call, given.document, row.context)
    store.update_subscription(session, call.tenant, row, given, context)
    _audit(session, call, "context.subscription.update", given.subscription_id, given)
    return Response(status_code=204)


@router.delete("/subscriptions/{subscription_id}", status_code=204)
def delete(
    subscription_id: str, session: DbSession, call: Call = write_call(SUBSCRIBE, with_body=False)
) -> Response:
    check_entity_id(subscription_id)
    store.delete_subscription(session, call.tenant, subscription_id)
    _audit(session, call, "context.subscription.delete", subscription_id)
    return Response(status_code=204)


def _audit(
    session: DbSession, call: Call, action: str, subscription_id: str, given: SubscriptionInput | None = None
) -> None:
    """Subscriptions send the tenant's data to an endpoint of the creator's choosing: each change is kept
    with that endpoint's host (not the whole URI: it may carry credentials)."""
    details: dict[str, Any] = {"tenant": call.tenant.name}
    if given is not None:
        details["endpoint_host"] = urlsplit(given.document["notification"]["endpoint"]["uri"]).hostname
    record(
        session,
        actor=call.principal.actor,
        action=action,
        object_type="context_subscription",
        object_id=subscription_id,
        details=details,
    )
