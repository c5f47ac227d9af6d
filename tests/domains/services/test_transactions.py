"""Service transactions over the API, on both databases: department records behind queries (own records
only, audited), appointments (working-day schedules, capacity, cancel, reschedule, visits), bills paid
through the signed sandbox provider (idempotent callbacks, receipts), and 好差评 ratings with follow-ups."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from cityhub.domains import manifests
from cityhub.domains.identity.models import Notification
from cityhub.domains.services.models import Bill, Booking, Payment, Slot
from cityhub.domains.services.service import appointments
from cityhub.kernel.models import AuditRecord, Job
from cityhub.kernel.payments import SandboxProvider
from cityhub.worker import build_registry
from tests.domains.services.desk_world import (
    API,
    NEIGHBOUR_ID,
    RESIDENT_ID,
    STRANGER_ID,
    World,
    add_slots,
    build_world,
)
from tests.kernel.kernel_testing import drain
from tests.web.factories import login


@pytest.fixture
def world(client, database) -> World:
    return build_world(client, database)


def records(*entries: tuple[str, str, int]) -> dict[str, object]:
    return {
        "records": [
            {
                "key": key,
                "id_number": number,
                "title": f"{key} 缴存",
                "occurred_on": "2026-10-15",
                "data": {"amount": amount, "employer": "滨江科技"},
            }
            for key, number, amount in entries
        ]
    }


# -- department records --------------------------------------------------------------------------------------


def test_a_department_system_loads_records_and_a_resident_reads_only_their_own(
    client, database, world
) -> None:
    url = f"{API}/departments/gjj/items/gjj-deposits/records"
    loaded = client.post(
        url,
        json=records(
            ("r1", RESIDENT_ID, 120_000),
            ("r2", RESIDENT_ID, 130_000),
            ("n1", NEIGHBOUR_ID, 90_000),
            ("s1", STRANGER_ID, 1),
        ),
        headers=world.gjj_key,
    )
    assert loaded.status_code == 200, loaded.text
    assert loaded.json() == {"stored": 4, "deleted": 0}
    mine = client.get(f"{API}/items/gjj-deposits/my-records", headers=world.resident)
    assert mine.status_code == 200, mine.text
    assert [r["key"] for r in mine.json()["records"]] == ["r2", "r1"]
    assert mine.json()["records"][0]["data"] == {"amount": 130_000, "employer": "滨江科技"}
    assert [f["key"] for f in mine.json()["fields"]] == ["amount", "employer"]
    theirs = client.get(f"{API}/items/gjj-deposits/my-records", headers=world.neighbour).json()
    assert [r["key"] for r in theirs["records"]] == ["n1"]
    with database.reading() as session:
        reads = session.scalars(
            select(AuditRecord).where(AuditRecord.action == "services.records.read")
        ).all()
    assert [(r.purpose, r.details) for r in reads] == [
        ("own-records", {"records": 2}),
        ("own-records", {"records": 1}),
    ]
    # a later load updates by key and deletes on request
    again = client.post(
        url,
        json={
            "records": [
                {**records(("r1", RESIDENT_ID, 1))["records"][0]},
                {**records(("r2", RESIDENT_ID, 0))["records"][0], "delete": True},
            ]
        },  # type: ignore[index]
        headers=world.gjj_key,
    )
    assert again.json() == {"stored": 1, "deleted": 1}
    assert (
        client.get(f"{API}/items/gjj-deposits/my-records", headers=world.resident).json()["records"][0][
            "data"
        ]["amount"]
        == 1
    )


def test_records_are_refused_whole_when_one_is_bad_and_only_the_owning_department_may_load(
    client, database, world
) -> None:
    url = f"{API}/departments/gjj/items/gjj-deposits/records"
    bad = records(("ok", RESIDENT_ID, 1), ("bad", "110105194912310020", 1))
    bad["records"][0]["data"]["salary"] = 5  # type: ignore[index]
    refused = client.post(url, json=bad, headers=world.gjj_key)
    assert refused.status_code == 422
    errors = refused.json()["errors"]
    assert errors[0] == {"index": 0, "key": "ok", "unknown_fields": ["salary"]}
    assert errors[1]["key"] == "bad" and "1101" not in errors[1]["detail"][1:]
    assert client.post(url, json=records(("x", RESIDENT_ID, 1)), headers=world.crj_staff).status_code == 403
    assert client.post(url, json=records(("x", RESIDENT_ID, 1)), headers=world.resident).status_code == 403
    assert client.post(url, json=records(("x", RESIDENT_ID, 1)), headers=world.gjj_staff).status_code == 200
    wrong_kind = client.post(
        f"{API}/departments/gjj/items/gjj-counter/records", json=records(), headers=world.gjj_staff
    )
    assert wrong_kind.status_code == 422
    assert client.post(url, json={"records": []}, headers=world.gjj_key).status_code == 422
    assert client.get(f"{API}/items/gjj-deposits/my-records").status_code == 401


def test_a_resident_without_a_verified_id_number_is_told_why(client, database, world) -> None:
    from tests.factories import bearer, make_user

    make_user(database, "newcomer", [("resident", world.town.community_a)])
    answer = client.get(f"{API}/items/gjj-deposits/my-records", headers=bearer(client, "newcomer"))
    assert answer.status_code == 403 and answer.json()["type"].endswith("/no-verified-identity")


# -- appointments --------------------------------------------------------------------------------------------


def test_a_schedule_opens_slots_on_working_days_only_across_national_day(client, database, world) -> None:
    schedule = {
        "first_day": "2026-09-28",
        "last_day": "2026-10-10",
        "times": ["09:00", "14:30"],
        "minutes": 30,
        "capacity": 3,
        "place": "一楼大厅",
    }
    url = f"{API}/departments/gjj/items/gjj-counter/schedule"
    opened = client.post(url, json=schedule, headers=world.gjj_staff)
    assert opened.status_code == 200, opened.text
    # Sep 28-30 (Mon-Wed) work, Oct 1-7 is the holiday, Oct 8-9 (Thu-Fri) work and Sat Oct 10 is an adjusted
    # working day: 3 + 2 + 1 = 6 days of two slots.
    assert opened.json() == {"created": 12, "existing": 0}
    assert client.post(url, json=schedule, headers=world.gjj_staff).json() == {"created": 0, "existing": 12}
    with database.reading() as session:
        starts = sorted(session.scalars(select(Slot.starts_at)).all())
    assert starts[0].isoformat() == "2026-09-28T01:00:00+00:00"  # 09:00 in Shanghai
    assert {s.date().isoformat() for s in starts} == {
        "2026-09-28",
        "2026-09-29",
        "2026-09-30",
        "2026-10-08",
        "2026-10-09",
        "2026-10-10",
    }
    assert client.post(url, json=schedule, headers=world.crj_staff).status_code == 403
    assert client.post(url, json={**schedule, "times": ["25:00"]}, headers=world.gjj_staff).status_code == 422
    backwards = {**schedule, "first_day": "2026-10-10", "last_day": "2026-10-01"}
    assert client.post(url, json=backwards, headers=world.gjj_staff).status_code == 422


def test_booking_respects_capacity_and_one_live_booking_per_person(client, database, world) -> None:
    first, second = add_slots(database, "gjj-counter", 2, capacity=1)
    booked = client.post(f"{API}/me/bookings", json={"slot": first}, headers=world.resident)
    assert booked.status_code == 201, booked.text
    assert booked.json()["status"] == "booked" and booked.json()["slot"]["free"] == 0
    full = client.post(f"{API}/me/bookings", json={"slot": first}, headers=world.neighbour)
    assert full.status_code == 409 and full.json()["type"].endswith("/slot-full")
    twice = client.post(f"{API}/me/bookings", json={"slot": second}, headers=world.resident)
    assert twice.status_code == 409 and twice.json()["type"].endswith("/already-booked")
    assert (
        client.post(f"{API}/me/bookings", json={"slot": 999_999}, headers=world.resident).status_code == 404
    )
    assert client.post(f"{API}/me/bookings", json={"slot": "x"}, headers=world.resident).status_code == 422
    assert client.post(f"{API}/me/bookings", json={"slot": first}, headers=world.gjj_key).status_code == 403
    slots = client.get(f"{API}/items/gjj-counter/slots").json()
    assert [(s["id"], s["free"]) for s in slots] == [(first, 0), (second, 1)]


def test_cancel_frees_the_seat_and_reschedule_moves_it(client, database, world) -> None:
    first, second, other = add_slots(database, "gjj-counter", 3, capacity=1)
    reference = client.post(f"{API}/me/bookings", json={"slot": first}, headers=world.resident).json()[
        "reference"
    ]
    moved = client.post(
        f"{API}/me/bookings/{reference}/reschedule", json={"slot": second}, headers=world.resident
    )
    assert moved.status_code == 200 and moved.json()["slot"]["id"] == second
    with database.reading() as session:
        assert dict(session.execute(select(Slot.id, Slot.booked)).all()) == {first: 0, second: 1, other: 0}
    assert client.post(f"{API}/me/bookings/{reference}/cancel", headers=world.neighbour).status_code == 404
    cancelled = client.post(f"{API}/me/bookings/{reference}/cancel", headers=world.resident)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.post(f"{API}/me/bookings/{reference}/cancel", headers=world.resident)
    assert again.status_code == 409
    with database.reading() as session:
        assert session.scalar(select(func.sum(Slot.booked))) == 0
    # the seat is free for someone else, and the resident may book afresh
    assert (
        client.post(f"{API}/me/bookings", json={"slot": second}, headers=world.neighbour).status_code == 201
    )
    assert client.post(f"{API}/me/bookings", json={"slot": other}, headers=world.resident).status_code == 201
    mine = client.get(f"{API}/me/bookings", headers=world.resident).json()
    assert [b["status"] for b in mine] == ["booked", "cancelled"]


def notices(database, topic: str) -> list[tuple[str, str]]:
    with database.reading() as session:
        rows = session.execute(
            select(Notification.subject, Notification.body).where(Notification.topic == topic)
        ).all()
    return [(subject, body) for subject, body in rows]


def test_residents_are_reminded_once_of_tomorrows_appointments(client, database, world) -> None:
    soon, later = (
        add_slots(database, "gjj-counter", 2, capacity=1, ahead=timedelta(hours=3))[0],
        add_slots(database, "crj-passport", 1, capacity=1, ahead=timedelta(days=3))[0],
    )
    client.post(f"{API}/me/bookings", json={"slot": soon}, headers=world.resident)
    client.post(f"{API}/me/bookings", json={"slot": later}, headers=world.neighbour)
    for expected in (1, 0):
        with database.unit_of_work() as session:
            assert appointments.send_reminders(session, "Asia/Shanghai") == expected
    ((subject, body),) = notices(database, "services.appointment.reminder")
    assert subject.startswith("预约提醒：公积金柜台预约") and "B" in body


def test_a_past_slot_cannot_be_booked(client, database, world) -> None:
    (past,) = add_slots(database, "gjj-counter", 1, capacity=5, ahead=timedelta(days=-1))
    answer = client.post(f"{API}/me/bookings", json={"slot": past}, headers=world.resident)
    assert answer.status_code == 409 and answer.json()["type"].endswith("/slot-past")


# -- ratings and follow-ups ----------------------------------------------------------------------------------


def test_an_attended_booking_is_rated_once_and_a_bad_rating_is_followed_up(client, database, world) -> None:
    (slot,) = add_slots(database, "gjj-counter", 1, capacity=2)
    reference = client.post(f"{API}/me/bookings", json={"slot": slot}, headers=world.resident).json()[
        "reference"
    ]
    rating = {"kind": "booking", "reference": reference, "level": 1, "comment": "排队太久"}
    early = client.post(f"{API}/me/ratings", json=rating, headers=world.resident)
    assert early.status_code == 409 and early.json()["type"].endswith("/not-completed")
    assert client.post(f"{API}/bookings/{reference}/attended", headers=world.crj_staff).status_code == 403
    attended = client.post(f"{API}/bookings/{reference}/attended", headers=world.gjj_staff)
    assert attended.status_code == 200 and attended.json()["status"] == "attended"
    assert client.post(f"{API}/me/ratings", json=rating, headers=world.neighbour).status_code == 404
    assert (
        client.post(f"{API}/me/ratings", json={**rating, "level": 6}, headers=world.resident).status_code
        == 422
    )
    rated = client.post(f"{API}/me/ratings", json=rating, headers=world.resident)
    assert rated.status_code == 201, rated.text
    assert rated.json()["level"] == 1 and rated.json()["follow_up"] is not None
    assert client.post(f"{API}/me/ratings", json=rating, headers=world.resident).status_code == 409
    assert client.get(f"{API}/follow-ups", headers=world.crj_staff).json()["total"] == 0
    queue = client.get(f"{API}/follow-ups?status=open", headers=world.gjj_staff).json()
    assert queue["total"] == 1 and queue["items"][0]["rating"]["comment"] == "排队太久"
    follow_up = queue["items"][0]["id"]
    note = {"note": "已电话回访，增加了窗口"}
    assert (
        client.post(f"{API}/follow-ups/{follow_up}/close", json=note, headers=world.crj_staff).status_code
        == 403
    )
    closed = client.post(f"{API}/follow-ups/{follow_up}/close", json=note, headers=world.gjj_staff)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert (
        client.post(f"{API}/follow-ups/{follow_up}/close", json=note, headers=world.gjj_staff).status_code
        == 409
    )
    assert (
        client.post(
            f"{API}/follow-ups/{follow_up}/close", json={"note": ""}, headers=world.gjj_staff
        ).status_code
        == 422
    )
    assert client.get(f"{API}/me/bookings", headers=world.resident).json()[0]["rating"] == 1
    ((_subject, body),) = notices(database, "services.rating.answered")
    assert "已电话回访" in body


def test_a_good_rating_opens_no_follow_up(client, database, world) -> None:
    (slot,) = add_slots(database, "gjj-counter", 1, capacity=1)
    reference = client.post(f"{API}/me/bookings", json={"slot": slot}, headers=world.resident).json()[
        "reference"
    ]
    client.post(f"{API}/bookings/{reference}/attended", headers=world.gjj_key)
    rated = client.post(
        f"{API}/me/ratings",
        json={"kind": "booking", "reference": reference, "level": 5},
        headers=world.resident,
    )
    assert rated.status_code == 201 and rated.json()["follow_up"] is None


# -- bills and payments --------------------------------------------------------------------------------------


def issue(client, world: World, *bills: dict[str, object]) -> dict[str, object]:
    answer = client.post(f"{API}/departments/gjj/bills", json={"bills": list(bills)}, headers=world.gjj_key)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def a_bill(number: str, amount: int = 258_000, **extra: object) -> dict[str, object]:
    return {
        "number": number,
        "id_number": RESIDENT_ID,
        "title": "2026年11月贷款还款",
        "amount_cents": amount,
        "item": "gjj-repayment",
        **extra,
    }


def pay_in_sandbox(client, world: World, bill_id: int, outcome: str = "pay") -> str:
    """Start a payment and answer the sandbox checkout page as the payer would; the payment reference."""
    checkout = client.post(f"{API}/me/bills/{bill_id}/pay", headers=world.resident)
    assert checkout.status_code == 201, checkout.text
    login(client, "resident")
    page = client.get(checkout.json()["checkout_url"])
    assert page.status_code == 200 and "¥2580.00" in page.text
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert csrf is not None
    answered = client.post(
        checkout.json()["checkout_url"],
        data={"outcome": outcome, "csrf_token": csrf.group(1)},
        follow_redirects=False,
    )
    assert answered.status_code == 303 and answered.headers["location"] == f"/services/bills/{bill_id}"
    return str(checkout.json()["payment_reference"])


def run_jobs(database, settings) -> int:
    return drain(database, build_registry(manifests()), settings)


def test_a_bill_is_paid_through_the_sandbox_and_a_replayed_callback_changes_nothing(
    client, database, settings, world
) -> None:
    assert issue(client, world, a_bill("B-1")) == {"issued": 1, "updated": 0, "cancelled": 0, "refused": []}
    (bill,) = client.get(f"{API}/me/bills", headers=world.resident).json()
    assert bill["status"] == "unpaid" and bill["department"] == "gjj"
    assert client.get(f"{API}/me/bills", headers=world.neighbour).json() == []
    assert client.post(f"{API}/me/bills/{bill['id']}/pay", headers=world.neighbour).status_code == 404
    reference = pay_in_sandbox(client, world, bill["id"])
    with database.reading() as session:
        callback = session.scalars(select(Job.payload).where(Job.name == "services.payment.settle")).one()
    assert run_jobs(database, settings) == 1
    paid = client.get(f"{API}/me/bills?status=paid", headers=world.resident).json()
    assert paid[0]["status"] == "paid" and paid[0]["payment_reference"] == reference
    receipt = client.get(f"{API}/me/bills/{bill['id']}/receipt", headers=world.resident)
    assert receipt.status_code == 200 and receipt.json()["receipt_number"].startswith("R")
    ((subject, body),) = notices(database, "services.payment.paid")
    assert "2026年11月贷款还款" in subject and receipt.json()["receipt_number"] in body and "¥2580.00" in body
    # the provider sends the same callback again (over HTTP this time): nothing changes
    replay = client.post(
        f"{API}/payments/callbacks/sandbox",
        content=callback["body"],
        headers={"X-Sandbox-Signature": callback["signature"], "Content-Type": "application/json"},
    )
    assert replay.status_code == 200 and replay.json() == {"status": "succeeded"}
    with database.reading() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(AuditRecord)
                .where(AuditRecord.action == "services.payment.succeeded")
            )
            == 1
        )
        assert session.scalar(select(Bill.status)) == "paid"
    assert client.post(f"{API}/me/bills/{bill['id']}/pay", headers=world.resident).status_code == 409
    # a paid bill is never changed by a later load
    assert issue(client, world, a_bill("B-1", 1))["refused"] == ["B-1"]
    # and the payment can be rated once
    rated = client.post(
        f"{API}/me/ratings",
        json={"kind": "payment", "reference": reference, "level": 4},
        headers=world.resident,
    )
    assert rated.status_code == 201 and rated.json()["item"] == "gjj-repayment"


def test_forged_or_altered_callbacks_are_refused(client, database, settings, world) -> None:
    issue(client, world, a_bill("B-2"))
    bill_id = client.get(f"{API}/me/bills", headers=world.resident).json()[0]["id"]
    reference = client.post(f"{API}/me/bills/{bill_id}/pay", headers=world.resident).json()[
        "payment_reference"
    ]
    provider = SandboxProvider(settings.secret_key)
    honest = json.dumps(
        {"reference": reference, "transaction": "T1", "amount_cents": 258_000, "succeeded": True}
    )
    url = f"{API}/payments/callbacks/sandbox"

    def send(body: str, signature: str):  # type: ignore[no-untyped-def]
        return client.post(url, content=body, headers={"X-Sandbox-Signature": signature})

    assert send(honest, "0" * 64).status_code == 400
    assert (
        send(honest, SandboxProvider("another-secret-key-of-some-length").sign(honest.encode())).status_code
        == 400
    )
    cheaper = honest.replace("258000", "1")
    assert send(cheaper, provider.sign(cheaper.encode())).status_code == 400
    unknown = honest.replace(reference, "P000000000000")
    assert send(unknown, provider.sign(unknown.encode())).status_code == 404
    garbage = '{"reference": 5'
    assert send(garbage, provider.sign(garbage.encode())).status_code == 400
    assert client.post(url, content=honest).status_code == 422  # no signature header
    with database.reading() as session:
        assert session.scalar(select(Payment.status)) == "pending"
        assert session.scalar(select(Bill.status)) == "unpaid"
    assert send(honest, provider.sign(honest.encode())).json() == {"status": "succeeded"}


def test_a_second_payment_of_a_paid_bill_is_kept_as_a_duplicate_to_refund(
    client, database, settings, world
) -> None:
    issue(client, world, a_bill("B-3"))
    bill_id = client.get(f"{API}/me/bills", headers=world.resident).json()[0]["id"]
    provider = SandboxProvider(settings.secret_key)
    references = [
        client.post(f"{API}/me/bills/{bill_id}/pay", headers=world.resident).json()["payment_reference"]
        for _ in range(2)
    ]
    for n, reference in enumerate(references):
        body = json.dumps(
            {"reference": reference, "transaction": f"T{n}", "amount_cents": 258_000, "succeeded": True}
        )
        answer = client.post(
            f"{API}/payments/callbacks/sandbox",
            content=body,
            headers={"X-Sandbox-Signature": provider.sign(body.encode())},
        )
        assert answer.status_code == 200
    with database.reading() as session:
        assert sorted(session.scalars(select(Payment.status)).all()) == ["duplicate", "succeeded"]


def test_a_declined_checkout_leaves_the_bill_unpaid_and_payable(client, database, settings, world) -> None:
    issue(client, world, a_bill("B-4"))
    bill_id = client.get(f"{API}/me/bills", headers=world.resident).json()[0]["id"]
    pay_in_sandbox(client, world, bill_id, outcome="decline")
    assert run_jobs(database, settings) == 1
    with database.reading() as session:
        assert session.scalar(select(Payment.status)) == "failed"
    assert client.get(f"{API}/me/bills", headers=world.resident).json()[0]["status"] == "unpaid"
    assert client.get(f"{API}/me/bills/{bill_id}/receipt", headers=world.resident).status_code == 404


def test_bills_can_be_cancelled_and_bad_loads_change_nothing(client, database, world) -> None:
    issue(client, world, a_bill("B-5"), a_bill("B-6"))
    assert issue(client, world, a_bill("B-5", cancel=True))["cancelled"] == 1
    assert [b["number"] for b in client.get(f"{API}/me/bills", headers=world.resident).json()] == ["B-6"]
    bad = client.post(
        f"{API}/departments/gjj/bills",
        json={"bills": [a_bill("B-7"), {**a_bill("B-8"), "id_number": "123456789012345678"}]},
        headers=world.gjj_key,
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["number"] == "B-8"
    twice = client.post(
        f"{API}/departments/gjj/bills", json={"bills": [a_bill("B-9"), a_bill("B-9")]}, headers=world.gjj_key
    )
    assert twice.status_code == 422
    other_item = client.post(
        f"{API}/departments/gjj/bills",
        json={"bills": [a_bill("B-10", item="crj-passport")]},
        headers=world.gjj_key,
    )
    assert other_item.status_code == 404
    assert (
        client.post(
            f"{API}/departments/crj/bills", json={"bills": [a_bill("B-11")]}, headers=world.gjj_key
        ).status_code
        == 403
    )
    with database.reading() as session:
        assert session.scalar(select(func.count()).select_from(Bill)) == 2
        assert session.scalar(select(func.count()).select_from(Booking)) == 0
