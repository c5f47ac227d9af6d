"""Subscription operations (clause 5.8): create, list, retrieve, update, delete, and how one is shown.

Every change bumps ``Tenant.subscriptions_version`` in the same transaction, which is how every process's
matching cache learns of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from cityhub.domains.context.errors import AlreadyExists, ResourceNotFound
from cityhub.domains.context.jsonld import TermMapper
from cityhub.domains.context.models import Subscription, Tenant
from cityhub.domains.context.service.tenants import TenantRef
from cityhub.domains.context.store.document import timestamp
from cityhub.domains.context.subscriptions.document import SubscriptionInput, compact_subscription, masked_uri
from cityhub.domains.context.subscriptions.matching import forget_version
from cityhub.domains.context.subscriptions.queue import has_pending_timer, queue_timer
from cityhub.kernel.db import utcnow


@dataclass(frozen=True)
class SubscriptionPage:
    subscriptions: list[Subscription]
    count: int


def create_subscription(
    session: Session, tenant: TenantRef, given: SubscriptionInput, context: Any, owner: str | None
) -> Subscription:
    if _find(session, tenant, given.subscription_id) is not None:
        raise AlreadyExists(f"subscription {given.subscription_id} already exists")
    now = utcnow()
    row = Subscription(
        tenant_id=tenant.id,
        subscription_id=given.subscription_id,
        document=given.document,
        context=context,
        owner=owner,
        is_active=given.is_active,
        expires_at=given.expires_at,
        times_sent=0,
        times_failed=0,
        created_at=now,
        modified_at=now,
    )
    session.add(row)
    session.flush()
    _changed(session, tenant, row)
    return row


def require_subscription(session: Session, tenant: TenantRef, subscription_id: str) -> Subscription:
    row = _find(session, tenant, subscription_id)
    if row is None:
        raise ResourceNotFound(f"subscription {subscription_id} does not exist")
    return row


def list_subscriptions(session: Session, tenant: TenantRef, *, limit: int, offset: int) -> SubscriptionPage:
    mine = Subscription.tenant_id == tenant.id
    rows = session.scalars(
        select(Subscription).where(mine).order_by(Subscription.pk).limit(limit).offset(offset)
    )
    count = session.scalar(select(func.count()).select_from(Subscription).where(mine)) or 0
    return SubscriptionPage(list(rows), int(count))


def update_subscription(
    session: Session, tenant: TenantRef, row: Subscription, given: SubscriptionInput, context: Any
) -> None:
    row.document = given.document
    row.context = context
    row.is_active = given.is_active
    row.expires_at = given.expires_at
    row.modified_at = utcnow()
    session.flush()
    _changed(session, tenant, row)


def delete_subscription(session: Session, tenant: TenantRef, subscription_id: str) -> None:
    """Its queued notifications go with it (the foreign key cascades)."""
    row = require_subscription(session, tenant, subscription_id)
    session.execute(delete(Subscription).where(Subscription.pk == row.pk))
    _bump(session, tenant)


def _find(session: Session, tenant: TenantRef, subscription_id: str) -> Subscription | None:
    return session.scalars(
        select(Subscription).where(
            Subscription.tenant_id == tenant.id, Subscription.subscription_id == subscription_id
        )
    ).first()


def _changed(session: Session, tenant: TenantRef, row: Subscription) -> None:
    _bump(session, tenant)
    if "timeInterval" in row.document and row.is_active and not has_pending_timer(session, row.pk):
        queue_timer(session, row.pk, utcnow())


def _bump(session: Session, tenant: TenantRef) -> None:
    session.execute(
        update(Tenant)
        .where(Tenant.id == tenant.id)
        .values(subscriptions_version=Tenant.subscriptions_version + 1)
        .execution_options(synchronize_session=False)
    )
    forget_version(session)


# -- showing -------------------------------------------------------------------------------------------------


def shown_subscription(row: Subscription, mapper: TermMapper) -> dict[str, Any]:
    """The subscription in the requester's terms, with the status the broker keeps (clause 5.2.12/5.2.14)."""
    shown = compact_subscription(row.document, mapper)
    now = utcnow()
    if row.expires_at is not None and row.expires_at <= now:
        shown["status"] = "expired"
    else:
        shown["status"] = "active" if row.is_active else "paused"
    notification = shown["notification"]
    endpoint = notification.get("endpoint")
    if isinstance(endpoint, dict) and isinstance(endpoint.get("uri"), str):
        endpoint["uri"] = masked_uri(endpoint["uri"])
    notification["timesSent"] = row.times_sent
    notification["timesFailed"] = row.times_failed
    for member, moment in (
        ("lastNotification", row.last_notification),
        ("lastSuccess", row.last_success),
        ("lastFailure", row.last_failure),
    ):
        if moment is not None:
            notification[member] = timestamp(moment)
    if row.last_notification is not None:
        failed = row.last_failure is not None and (
            row.last_success is None or row.last_failure > row.last_success
        )
        notification["status"] = "failed" if failed else "ok"
    if row.last_failure_reason and notification.get("status") == "failed":
        notification["lastFailureReason"] = row.last_failure_reason
    return shown
