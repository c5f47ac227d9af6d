"""Online forms over the API, on both databases: typed answers checked field by field, real file types,
pre-filling only with consent, the application's way through the department (with its history, audit and
notifications), withdrawal, attachments for the applicant and the handling department only, and rating."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from cityhub.domains.identity.models import Notification
from cityhub.domains.services.models import Application, Attachment
from cityhub.domains.services.service import forms
from cityhub.kernel.models import AuditRecord
from tests.domains.services.desk_world import API, World, build_world, principal_of

PDF = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
GOOD = {"name": "张三", "reason": "rent", "amount": "3200.50", "since": "2026-09-01", "first_home": "on"}


@pytest.fixture
def world(client, database) -> World:
    return build_world(client, database)


def apply(client, world: World, answers: dict[str, str] | None = None, files=None):  # type: ignore[no-untyped-def]
    return client.post(
        f"{API}/items/gjj-withdraw/applications",
        data=GOOD if answers is None else answers,
        files={"contract": ("合同.pdf", PDF, "application/pdf")} if files is None else files,
        headers=world.resident,
    )


def test_an_application_goes_through_the_department_and_is_rated(client, database, settings, world) -> None:
    created = apply(client, world)
    assert created.status_code == 201, created.text
    application = created.json()
    assert application["status"] == "submitted"
    assert application["answers"] == {
        "name": "张三",
        "phone": None,
        "reason": "rent",
        "amount": 320_050,
        "since": "2026-09-01",
        "first_home": True,
        "remarks": None,
    }
    (attachment,) = application["attachments"]
    assert attachment["content_type"] == "application/pdf" and attachment["filename"] == "合同.pdf"
    reference = application["reference"]
    decide = f"{API}/applications/{reference}/decision"
    assert client.post(decide, json={"status": "accepted"}, headers=world.crj_staff).status_code == 403
    queue = client.get(f"{API}/departments/gjj/applications?status=submitted", headers=world.gjj_staff).json()
    assert [a["reference"] for a in queue["items"]] == [reference]
    assert (
        client.post(decide, json={"status": "approved", "note": "ok"}, headers=world.gjj_staff).status_code
        == 409
    )
    assert client.post(decide, json={"status": "needs_more"}, headers=world.gjj_staff).status_code == 422
    more = client.post(decide, json={"status": "needs_more", "note": "请补充盖章页"}, headers=world.gjj_staff)
    assert more.status_code == 200 and more.json()["status"] == "needs_more"
    again = client.post(
        f"{API}/me/applications/{reference}/resubmit",
        data={**GOOD, "remarks": "已补充"},
        files={"contract": ("盖章页.png", PNG, "image/png")},
        headers=world.resident,
    )
    assert again.status_code == 200 and again.json()["status"] == "submitted"
    assert len(again.json()["attachments"]) == 2
    assert (
        client.post(decide, json={"status": "accepted"}, headers=world.gjj_key).json()["status"] == "accepted"
    )
    rating = {"kind": "application", "reference": reference, "level": 4}
    assert client.post(f"{API}/me/ratings", json=rating, headers=world.resident).status_code == 409
    done = client.post(
        decide, json={"status": "approved", "note": "3 个工作日内到账"}, headers=world.gjj_staff
    )
    assert [step["status"] for step in done.json()["history"]] == [
        "submitted",
        "needs_more",
        "submitted",
        "accepted",
        "approved",
    ]
    assert (
        client.post(decide, json={"status": "rejected", "note": "x"}, headers=world.gjj_staff).status_code
        == 409
    )
    assert client.post(f"{API}/me/ratings", json=rating, headers=world.resident).status_code == 201
    assert client.get(f"{API}/me/applications/{reference}", headers=world.resident).json()["rating"] == 4
    with database.reading() as session:
        notes = session.scalars(
            select(Notification.subject).where(Notification.topic == "services.application.changed")
        )
        assert len(notes.all()) == 3
        actions = session.scalars(
            select(AuditRecord.action).where(AuditRecord.action.like("services.application%"))
        )
        assert sorted(actions.all()) == [
            "services.application.accepted",
            "services.application.approved",
            "services.application.needs_more",
            "services.applications.read",
        ]


def test_answers_are_checked_field_by_field_and_nothing_is_kept_when_one_is_wrong(
    client, database, world
) -> None:
    bad = {"reason": "lottery", "amount": "12.345", "since": "yesterday", "colour": "red"}
    refused = apply(
        client, world, bad, files={"contract": ("contract.pdf", b"MZ not a pdf", "application/pdf")}
    )
    assert refused.status_code == 422
    errors = {error["field"] for error in refused.json()["errors"]}
    assert errors == {"colour", "name", "reason", "amount", "since", "contract"}
    missing_file = apply(client, world, files={})
    assert missing_file.status_code == 422 and missing_file.json()["errors"] == [
        {"field": "contract", "detail": "请上传文件。"}
    ]
    assert apply(client, world, {**GOOD, "remarks": "字" * 5001}).status_code == 422
    assert (
        client.post(f"{API}/items/gjj-counter/applications", data=GOOD, headers=world.resident).status_code
        == 422
    )
    assert client.post(f"{API}/items/gjj-withdraw/applications", data=GOOD).status_code == 401
    with database.reading() as session:
        assert session.scalar(select(func.count()).select_from(Application)) == 0
        assert session.scalar(select(func.count()).select_from(Attachment)) == 0


def test_a_form_is_prefilled_only_after_the_resident_agrees(client, database, world) -> None:
    assert client.get(f"{API}/items/gjj-withdraw/form", headers=world.resident).json()["prefilled"] == {}
    with database.unit_of_work() as session:
        forms.allow_prefill(session, principal_of(session, "resident"))
    shown = client.get(f"{API}/items/gjj-withdraw/form", headers=world.resident).json()
    assert shown["prefilled"] == {"name": "张三"} and shown["fields"][0]["key"] == "name"


def test_withdrawal_and_who_may_fetch_an_attachment(client, database, settings, world) -> None:
    application = apply(client, world).json()
    attachment = application["attachments"][0]["id"]
    own = client.get(f"{API}/attachments/{attachment}", headers=world.resident)
    assert own.status_code == 200 and own.content == PDF and own.headers["content-type"] == "application/pdf"
    assert client.get(f"{API}/attachments/{attachment}", headers=world.neighbour).status_code == 404
    assert client.get(f"{API}/attachments/{attachment}", headers=world.crj_staff).status_code == 404
    assert client.get(f"{API}/attachments/{attachment}", headers=world.gjj_staff).content == PDF
    assert client.get(f"{API}/attachments/999999", headers=world.resident).status_code == 404
    assert (
        client.get(f"{API}/me/applications/{application['reference']}", headers=world.neighbour).status_code
        == 404
    )
    withdrawn = client.post(
        f"{API}/me/applications/{application['reference']}/withdraw", headers=world.resident
    )
    assert withdrawn.json()["status"] == "withdrawn"
    assert (
        client.post(
            f"{API}/me/applications/{application['reference']}/withdraw", headers=world.resident
        ).status_code
        == 409
    )
    with database.reading() as session:
        reads = session.scalars(
            select(AuditRecord.actor).where(AuditRecord.action == "services.attachment.read")
        )
        assert len(reads.all()) == 1  # the department's read, not the applicant's
    assert (settings.var_dir / "uploads" / "services").is_dir()
