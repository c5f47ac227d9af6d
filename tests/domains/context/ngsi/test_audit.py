"""Privileged changes: audit of stored @contexts and subscriptions, tenant re-ties (both databases)."""

from __future__ import annotations

from sqlalchemy import select

from cityhub.kernel.db import Database
from cityhub.kernel.models import AuditRecord
from tests.domains.context.conftest import NgsiClient, api_key_for
from tests.factories import Town

SUBSCRIPTION = {
    "type": "Subscription",
    "entities": [{"type": "Room"}],
    "notification": {"endpoint": {"uri": "http://user:secret@receiver.example:8080/notify"}},
}


def _records(database: Database, object_type: str) -> list[tuple[str, str, dict[str, object]]]:
    with database.reading() as session:
        rows = session.execute(
            select(AuditRecord.action, AuditRecord.object_id, AuditRecord.details)
            .where(AuditRecord.object_type == object_type)
            .order_by(AuditRecord.id)
        )
        return [(action, object_id, details) for action, object_id, details in rows]


def test_stored_context_add_and_delete_are_audited(ngsi: NgsiClient, database: Database) -> None:
    added = ngsi.post(
        "/jsonldContexts",
        json={"@context": {"room": "urn:example:room"}},
        headers={"Content-Type": "application/ld+json"},
    )
    assert added.status_code == 201, added.text
    local_id = added.headers["Location"].rsplit("/", 1)[-1]
    assert ngsi.delete(f"/jsonldContexts/{local_id}").status_code == 204
    records = _records(database, "context_jsonld_context")
    assert [(action, object_id) for action, object_id, _ in records] == [
        ("context.jsonld_context.add", local_id),
        ("context.jsonld_context.delete", local_id),
    ]


def test_subscription_changes_are_audited_without_endpoint_credentials(
    ngsi: NgsiClient, database: Database
) -> None:
    created = ngsi.post("/subscriptions", json=SUBSCRIPTION, tenant="audited")
    assert created.status_code == 201, created.text
    subscription_id = created.headers["Location"].rsplit("/", 1)[-1]
    path = f"/subscriptions/{subscription_id}"
    assert ngsi.patch(path, json={"description": "rooms"}, tenant="audited").status_code == 204
    assert ngsi.delete(path, tenant="audited").status_code == 204
    records = _records(database, "context_subscription")
    assert [action for action, _, _ in records] == [
        "context.subscription.create",
        "context.subscription.update",
        "context.subscription.delete",
    ]
    assert {object_id for _, object_id, _ in records} == {subscription_id}
    assert records[0][2] == {"tenant": "audited", "endpoint_host": "receiver.example"}
    assert "secret" not in str(records)


def test_a_tenant_tied_elsewhere_cannot_be_re_tied_by_another_units_manager(
    ngsi: NgsiClient, database: Database, town: Town
) -> None:
    """Re-tying checked only the target unit: district B's manager could take over district A's tenant."""
    tie = "/api/v1/context/tenants/district-a"
    assert (
        ngsi.client.put(tie, json={"org_unit_id": town.district_a.id}, headers=ngsi.headers).status_code
        == 200
    )
    manager_b = api_key_for(database, town, ("context.tenants.manage",), town.district_b)
    takeover = ngsi.client.put(
        tie, json={"org_unit_id": town.district_b.id}, headers={"X-API-Key": manager_b}
    )
    assert takeover.status_code == 403, takeover.text
    untie = ngsi.client.put(tie, json={"org_unit_id": None}, headers={"X-API-Key": manager_b})
    assert untie.status_code == 403, untie.text
    own = ngsi.client.put(
        "/api/v1/context/tenants/district-b",
        json={"org_unit_id": town.district_b.id},
        headers={"X-API-Key": manager_b},
    )
    assert own.status_code == 200, own.text
