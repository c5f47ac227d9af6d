"""A resident's service transactions in pages: book a slot from the item page, look up their own records,
pay a bill through the sandbox checkout, see the receipt and rate it — in zh_CN and en."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from cityhub.domains import manifests
from cityhub.kernel.db import Database
from cityhub.kernel.models import AuditRecord
from cityhub.kernel.settings import Settings
from cityhub.worker import build_registry
from tests.domains.services.desk_world import API, RESIDENT_ID, add_slots, build_world
from tests.kernel.kernel_testing import drain
from tests.web.factories import HTML, csrf_token, login, post_form


def test_a_resident_books_looks_up_pays_and_rates_in_pages(
    client: TestClient, database: Database, settings: Settings
) -> None:
    world = build_world(client, database)
    record = {"key": "r1", "id_number": RESIDENT_ID, "title": "十月缴存", "data": {"amount": 120_000}}
    url = f"{API}/departments/gjj/items/gjj-deposits/records"
    assert client.post(url, json={"records": [record]}, headers=world.gjj_key).status_code == 200
    bill = {"number": "B-1", "id_number": RESIDENT_ID, "title": "十一月还款", "amount_cents": 258_000}
    assert client.post(
        f"{API}/departments/gjj/bills", json={"bills": [bill]}, headers=world.gjj_key
    ).is_success
    (slot,) = add_slots(database, "gjj-counter", 1, capacity=2)
    assert login(client, "resident").status_code == 303

    item = client.get("/services/items/gjj-counter", headers=HTML)
    assert "2 个名额中剩余 2 个" in item.text
    booked = post_form(
        client, "/services/items/gjj-counter", "/services/items/gjj-counter/book", {"slot": str(slot)}
    )
    assert booked.status_code == 303 and booked.headers["location"] == "/services/mine"
    mine = client.get("/services/mine", headers=HTML)
    assert "公积金柜台预约" in mine.text and "已预约" in mine.text and "十一月还款" in mine.text

    records = client.get("/services/items/gjj-deposits/records", headers=HTML)
    assert records.status_code == 200 and "¥1,200.00" in records.text and "十月缴存" in records.text
    with database.reading() as session:
        assert session.scalars(
            select(AuditRecord.action).where(AuditRecord.action == "services.records.read")
        ).all()
    cross_site = client.get(
        "/services/items/gjj-deposits/records", headers={**HTML, "Sec-Fetch-Site": "cross-site"}
    )
    assert cross_site.status_code == 403

    bill_id = client.get(f"{API}/me/bills", headers=world.resident).json()[0]["id"]
    paying = post_form(client, f"/services/bills/{bill_id}", f"/services/bills/{bill_id}/pay", {})
    assert paying.status_code == 303 and paying.headers["location"].startswith("/payments/sandbox/")
    checkout = paying.headers["location"]
    assert "¥2580.00" in client.get(checkout, headers=HTML).text
    assert (
        post_form(client, checkout, checkout, {"outcome": "pay"}).headers["location"]
        == f"/services/bills/{bill_id}"
    )
    assert drain(database, build_registry(manifests()), settings) == 1
    paid = client.get(f"/services/bills/{bill_id}", headers=HTML)
    assert "已缴费" in paid.text and "回执" in paid.text and 'name="level"' in paid.text
    reference = client.get(f"{API}/me/bills", headers=world.resident).json()[0]["payment_reference"]
    rated = post_form(
        client,
        f"/services/bills/{bill_id}",
        "/services/ratings",
        {"kind": "payment", "reference": reference, "level": "5", "back": f"/services/bills/{bill_id}"},
    )
    assert rated.status_code == 303
    assert "非常满意" in client.get(f"/services/bills/{bill_id}", headers=HTML).text
    english = client.get("/services/mine", headers={**HTML, "Accept-Language": "en"})
    assert "My appointments" in english.text and "Paid" in english.text


def test_the_sandbox_checkout_refuses_a_forged_link(client: TestClient, database: Database) -> None:
    build_world(client, database)
    login(client, "resident")
    assert client.get("/payments/sandbox/not-a-signed-token", headers=HTML).status_code == 404


def test_a_department_desk_sees_its_day_and_closes_follow_ups(client: TestClient, database: Database) -> None:
    world = build_world(client, database)
    first, second = add_slots(database, "gjj-counter", 2, capacity=1, ahead=timedelta(minutes=5))
    today_booking = client.post(f"{API}/me/bookings", json={"slot": first}, headers=world.resident).json()
    other = client.post(f"{API}/me/bookings", json={"slot": second}, headers=world.neighbour).json()
    client.post(f"{API}/bookings/{other['reference']}/attended", headers=world.gjj_key)
    bad = {"kind": "booking", "reference": other["reference"], "level": 2, "comment": "材料没说清楚"}
    assert client.post(f"{API}/me/ratings", json=bad, headers=world.neighbour).status_code == 201

    login(client, "crj_staff")
    assert "材料没说清楚" not in client.get("/console/services", headers=HTML).text
    client.cookies.clear()
    login(client, "gjj_staff")
    desk = client.get("/console/services", headers=HTML)
    assert desk.status_code == 200 and "材料没说清楚" in desk.text and today_booking["reference"] in desk.text
    came = post_form(
        client, "/console/services", f"/console/services/bookings/{today_booking['reference']}/attended", {}
    )
    assert came.status_code == 303
    follow_up = client.get(f"{API}/follow-ups", headers=world.gjj_staff).json()["items"][0]["id"]
    closed = post_form(
        client, "/console/services", f"/console/services/follow-ups/{follow_up}/close", {"note": "已回访"}
    )
    assert closed.status_code == 303
    after = client.get("/console/services", headers=HTML).text
    assert "材料没说清楚" not in after
    statuses = [b["status"] for b in client.get(f"{API}/me/bookings", headers=world.resident).json()]
    assert statuses == ["attended"]
    client.cookies.clear()
    login(client, "resident")
    assert client.get("/console/services", headers=HTML).status_code == 403


def test_a_resident_applies_online_and_the_desk_decides(client: TestClient, database: Database) -> None:
    build_world(client, database)
    login(client, "resident")
    form = client.get("/services/items/gjj-withdraw/apply", headers=HTML)
    assert form.status_code == 200 and "租房合同" in form.text and "使用我的个人信息填写" in form.text
    post_form(
        client,
        "/services/items/gjj-withdraw/apply",
        "/services/prefill",
        {"back": "/services/items/gjj-withdraw/apply"},
    )
    prefilled = client.get("/services/items/gjj-withdraw/apply", headers=HTML)
    assert 'value="张三"' in prefilled.text and "使用我的个人信息填写" not in prefilled.text
    token = csrf_token(prefilled.text)
    answers = {"csrf_token": token, "name": "张三", "reason": "rent", "amount": "abc", "remarks": "急用"}
    refused = client.post(
        "/services/items/gjj-withdraw/apply",
        data=answers,
        files={"contract": ("lease.pdf", b"%PDF-1.4 lease", "application/pdf")},
        headers=HTML,
    )
    assert refused.status_code == 422 and "请填写数字" in refused.text and "急用" in refused.text
    sent = client.post(
        "/services/items/gjj-withdraw/apply",
        data={**answers, "amount": "1500"},
        files={"contract": ("lease.pdf", b"%PDF-1.4 lease", "application/pdf")},
        headers=HTML,
        follow_redirects=False,
    )
    assert sent.status_code == 303 and sent.headers["location"].startswith("/services/applications/A")
    page = client.get(sent.headers["location"], headers=HTML)
    assert "¥1,500.00" in page.text and "lease.pdf" in page.text and "已提交" in page.text
    reference = sent.headers["location"].rsplit("/", 1)[1]

    client.cookies.clear()
    login(client, "gjj_staff")
    desk = client.get("/console/services", headers=HTML)
    assert reference in desk.text and "待办申请" in desk.text
    decided = post_form(
        client,
        "/console/services",
        f"/console/services/applications/{reference}/decision",
        {"status": "needs_more", "note": "请补充身份证复印件"},
    )
    assert decided.status_code == 303

    client.cookies.clear()
    login(client, "resident")
    page = client.get(f"/services/applications/{reference}", headers=HTML)
    assert "请补充身份证复印件" in page.text and "需补充材料" in page.text
    fix = client.get(f"/services/items/gjj-withdraw/apply?reference={reference}", headers=HTML)
    assert 'value="1500.00"' in fix.text and "重新提交" in fix.text
    resent = client.post(
        f"/services/applications/{reference}/resubmit",
        data={"csrf_token": csrf_token(fix.text), "name": "张三", "reason": "rent", "amount": "1500"},
        headers=HTML,
        follow_redirects=False,
    )
    assert resent.status_code == 303
    assert "已提交" in client.get(f"/services/applications/{reference}", headers=HTML).text
