"""Market pages: the nearby list and map, a store and its coupons, claiming in place or by a plain form, my
coupon with its QR code, the counter's look-up and redemption (once, even when submitted twice), the
merchant's console, the application form and the operator's review.

The pages are read in English (the locale cookie), so that the assertions hold before and after the Chinese
translations arrive; names in the data are Chinese.
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from cityhub.domains.market import views
from cityhub.kernel.db import Database
from tests.domains.market.world import API, HOME, Market, build_market, make_batch
from tests.web.factories import HTML, as_user, csrf_token, page_of, post_form

CLIENT_KEY = re.compile(r'name="client_key" value="([0-9a-f]+)"')


def _world(client: TestClient, database: Database) -> tuple[Market, int]:
    market = build_market(client, database)
    return market, make_batch(client, market, title="满30减5")


def _claimed_code(client: TestClient, market: Market, batch: int) -> str:
    claimed = client.post(f"{API}/batches/{batch}/claim", headers=market.resident)
    assert claimed.status_code == 201, claimed.text
    return str(claimed.json()["code"])


def test_nearby_lists_the_stores_around_the_resident_with_a_map(
    client: TestClient, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    market, _batch = _world(client, database)
    as_user(client, None)
    here = f"/market?lon={HOME[0]}&lat={HOME[1]}"
    page = page_of(client, here)
    assert 'id="market-map"' in page.text and "/static/js/market-map.js" in page.text
    assert page.text.index("面馆一店") < page.text.index("面馆二店")  # nearest first
    assert "邻里面馆" in page.text and "1.2 km" in page.text and "Open now" in page.text
    assert f'href="/market/stores/{market.stores[0]}"' in page.text
    assert "&#34;lat&#34;: 30.25" in page.text  # the markers of the map, as data for the script

    assert "面馆二店" not in page_of(client, f"{here}&radius_km=0.5").text
    only_second = page_of(client, f"{here}&q=二店").text
    assert "面馆二店" in only_second and "面馆一店" not in only_second
    assert "No shops found" in page_of(client, f"{here}&category=grocery").text
    assert 'role="alert"' in page_of(client, f"{here}&radius_km=99").text  # past the largest radius

    monkeypatch.setattr(views, "NEARBY_PAGE", 1)  # one a page: "more" leads to the next
    first = page_of(client, here).text
    assert "面馆一店" in first and "面馆二店" not in first and "offset=1" in first
    assert "面馆二店" in page_of(client, f"{here}&offset=1").text
    monkeypatch.undo()

    assert "面馆一店" in page_of(client, "/market").text  # anonymous: around the city (community A)
    as_user(client, "neighbour")  # lives in community B, 10 km away
    assert "面馆一店" not in page_of(client, "/market").text
    assert "面馆一店" in page_of(client, "/market?radius_km=20").text
    as_user(client, "resident")  # lives next door
    assert "面馆一店" in page_of(client, "/market").text


def test_store_page_shows_the_coupons_and_claiming_gives_a_qr_code(
    client: TestClient, database: Database
) -> None:
    market, batch = _world(client, database)
    store_url = f"/market/stores/{market.stores[0]}"
    as_user(client, None)
    anonymous = page_of(client, store_url).text
    assert "面馆一店" in anonymous and "满30减5" in anonymous and "¥5.00 off orders of ¥30.00" in anonymous
    assert "Log in to claim" in anonymous and "Monday" in anonymous and 'id="market-map"' in anonymous
    claim_url = f"{store_url}/batches/{batch}/claim"
    refused = client.post(
        claim_url, data={"csrf_token": csrf_token(anonymous)}, headers=HTML, follow_redirects=False
    )
    assert refused.status_code == 303 and refused.headers["location"].startswith("/login?next=")

    as_user(client, "resident")
    page = page_of(client, store_url)
    assert f'hx-post="{claim_url}"' in page.text
    swapped = client.post(
        claim_url, data={"csrf_token": csrf_token(page.text)}, headers={**HTML, "HX-Request": "true"}
    )
    assert swapped.status_code == 200 and "<html" not in swapped.text  # the batch's entry, for htmx
    assert f'id="batch-{batch}"' in swapped.text and "Show my coupon" in swapped.text
    assert "99 left" in swapped.text

    plain = post_form(client, store_url, claim_url, {})
    assert plain.status_code == 303 and plain.headers["location"].startswith("/market/me/coupons/")
    coupon = page_of(client, plain.headers["location"]).text
    code = plain.headers["location"].rsplit("/", 1)[1]
    assert "Coupon claimed" in coupon and '<div class="qr"' in coupon and "<svg" in coupon
    assert " ".join(code[i : i + 4] for i in range(0, 12, 4)) in coupon and "Ready to use" in coupon

    over = post_form(client, store_url, claim_url, {})  # the batch allows two a person
    assert over.status_code == 303 and over.headers["location"] == f"{store_url}#batch-{batch}"
    again = page_of(client, store_url).text
    assert 'class="alert" role="alert"' in again and "the most one person may" in again
    in_place = client.post(
        claim_url, data={"csrf_token": csrf_token(again)}, headers={**HTML, "HX-Request": "true"}
    )
    assert in_place.status_code == 200 and "the most one person may" in in_place.text

    mine = page_of(client, "/market/me/coupons").text
    assert mine.count('href="/market/me/coupons/') == 2 and "邻里面馆" in mine
    assert client.get("/market/me/coupons/000000000000", headers=HTML).status_code == 404


def test_a_coupon_is_given_to_another_resident(client: TestClient, database: Database) -> None:
    market, _plain = _world(client, database)
    batch = make_batch(client, market, title="可转赠", transferable=True)
    code = _claimed_code(client, market, batch)
    as_user(client, "resident")
    url = f"/market/me/coupons/{code}"
    assert 'name="to_username"' in page_of(client, url).text
    unknown = post_form(client, url, f"{url}/transfer", {"to_username": "nobody"})
    assert unknown.status_code == 422 and "nobody" in unknown.text and 'role="alert"' in unknown.text
    given = post_form(client, url, f"{url}/transfer", {"to_username": "neighbour"})
    assert given.status_code == 303
    assert client.get(url, headers=HTML).status_code == 404
    as_user(client, "neighbour")
    assert "可转赠" in page_of(client, url).text


def test_the_counter_looks_up_and_redeems_a_code_once(client: TestClient, database: Database) -> None:
    market, batch = _world(client, database)
    code = _claimed_code(client, market, batch)
    as_user(client, "clerk1")
    console = page_of(client, "/market/merchant").text
    scanner = f"/market/merchant/{market.merchant_id}/scanner"
    assert "邻里面馆" in console and f'href="{scanner}"' in console
    assert "Coupon batches" not in console  # a clerk redeems; only owners run the shop

    looked = page_of(client, f"{scanner}?code={code}&store_id={market.stores[1]}").text
    assert "满30减5" in looked and "Can be used now" in looked
    assert f'name="store_id" value="{market.stores[1]}"' in looked
    found = CLIENT_KEY.search(looked)
    assert found
    form = {
        "code": code,
        "store_id": str(market.stores[1]),
        "amount": "40",
        "client_key": found.group(1),
        "csrf_token": csrf_token(looked),
    }
    first = client.post(scanner, data=form, headers=HTML, follow_redirects=False)
    assert first.status_code == 303
    done = page_of(client, first.headers["location"]).text
    assert 'id="till-result"' in done and "Redeemed." in done and "¥5.00" in done

    second = client.post(scanner, data=form, headers=HTML, follow_redirects=False)  # a double tap
    replayed = page_of(client, second.headers["location"]).text
    assert "already recorded; nothing was redeemed twice" in replayed
    counted = client.get(f"{API}/merchants/{market.merchant_id}/batches", headers=market.owner).json()
    assert [b["redeemed"] for b in counted if b["id"] == batch] == [1]

    fresh = {**form, "client_key": "another-till-key-1"}
    conflict = client.post(scanner, data=fresh, headers=HTML, follow_redirects=False)
    assert f"code={code}" in conflict.headers["location"]  # back to the coupon, to see why
    refused = page_of(client, conflict.headers["location"]).text
    assert 'role="alert" id="till-result"' in refused and "already redeemed" in refused
    assert "Used" in refused and "Can be used now" not in refused
    assert "No coupon of this merchant" in page_of(client, f"{scanner}?code=123456789012").text
    assert 'type="hidden" name="code"' not in page_of(client, scanner).text


def test_residents_cannot_open_the_scanner_or_the_review(client: TestClient, database: Database) -> None:
    market, batch = _world(client, database)
    code = _claimed_code(client, market, batch)
    as_user(client, "resident")
    scanner = f"/market/merchant/{market.merchant_id}/scanner"
    assert client.get(scanner, headers=HTML).status_code == 403
    assert client.get("/console/market/merchants", headers=HTML).status_code == 403
    home = page_of(client, "/market").text
    form = {"code": code, "store_id": str(market.stores[0]), "amount": "40", "client_key": "resident-try-1"}
    posted = client.post(
        scanner, data={**form, "csrf_token": csrf_token(home)}, headers=HTML, follow_redirects=False
    )
    assert posted.status_code == 403
    lookup = client.get(f"{API}/merchants/{market.merchant_id}/coupons/{code}", headers=market.clerk)
    assert lookup.json()["status"] == "claimed"  # nothing was redeemed
    assert "You do not run or work for a shop" in page_of(client, "/market/merchant").text


APPLICATION = {
    "name": "街角花店",
    "category": "other",
    "licence_number": "91330100MA2B3C4D5F",
    "contact_phone": "0571-88881111",
    "community": "Mb",
    "description": "鲜花绿植",
}


def test_the_application_form_checks_and_the_operator_approves(
    client: TestClient, database: Database
) -> None:
    build_market(client, database)
    as_user(client, "neighbour")
    form = page_of(client, "/market/apply").text
    assert '<option value="Mb" selected>' in form  # the applicant's own community
    bad = post_form(client, "/market/apply", "/market/apply", {**APPLICATION, "licence_number": "12!"})
    assert bad.status_code == 422 and 'id="e-licence_number"' in bad.text and "街角花店" in bad.text
    assert "街角花店" not in page_of(client, "/market/merchant").text  # nothing was created
    sent = post_form(client, "/market/apply", "/market/apply", APPLICATION)
    assert sent.status_code == 303
    mine = page_of(client, "/market/merchant").text
    assert "街角花店" in mine and "Waiting for review" in mine and 'name="file"' in mine
    merchant_id = int(sent.headers["location"].rsplit("-", 1)[1])

    as_user(client, "operator1")
    console = "/console/market/merchants"
    queue = page_of(client, console).text
    assert "街角花店" in queue and "91330100MA2B3C4D5F" in queue and "neighbour" in queue
    action = f"{console}/{merchant_id}/review"
    no_reason = post_form(client, console, action, {"decision": "reject", "reason": ""})
    assert no_reason.status_code == 422 and "give the merchant a reason" in no_reason.text
    approved = post_form(client, console, action, {"decision": "approve", "status": "pending"})
    assert approved.status_code == 303 and approved.headers["location"] == f"{console}?status=pending"
    after = page_of(client, approved.headers["location"]).text
    assert "街角花店 is approved" in after and "No merchants in this list" in after
    assert "街角花店" in page_of(client, f"{console}?status=approved").text
    twice = post_form(client, f"{console}?status=approved", action, {"decision": "approve"})
    assert twice.status_code == 409 and 'role="alert"' in twice.text

    as_user(client, "neighbour")  # a new login carries the owner's role
    owned = page_of(client, "/market/merchant").text
    assert f'id="stores-{merchant_id}"' in owned and "Add a store" in owned


def test_the_owner_runs_stores_batches_staff_and_till_keys(client: TestClient, database: Database) -> None:
    market, batch = _world(client, database)
    as_user(client, "owner1")
    console = "/market/merchant"
    page = page_of(client, console).text
    assert "面馆一店" in page and "clerk1" in page and "till 1" in page and "满30减5" in page
    base = f"/market/merchant/{market.merchant_id}"

    store = {
        "name": "面馆三店",
        "category": "food",
        "address": "三店路3号",
        "lon": "120.205",
        "lat": "30.251",
    }
    bad_hours = post_form(client, console, f"{base}/stores", {**store, "hours": "9 to 5"})
    assert bad_hours.status_code == 422 and "09:00-21:00" in bad_hours.text and "面馆三店" in bad_hours.text
    added = post_form(client, console, f"{base}/stores", {**store, "hours": "08:00-20:00", "days": "mon"})
    assert added.status_code == 303
    stores = client.get(f"{API}/merchants/{market.merchant_id}/stores", headers=market.owner).json()
    assert [s["opening_hours"] for s in stores if s["name"] == "面馆三店"] == [{"mon": [["08:00", "20:00"]]}]

    until = (datetime.now(UTC) + timedelta(days=5)).date().isoformat()
    made = {"kind": "CASH", "title": "满50减10", "reduce_cost": "10", "least_cost": "50", "valid_days": "7"}
    made |= {"claim_until": until, "stock": "20", "per_person_limit": "1", "transferable": "true"}
    wrong = post_form(client, console, f"{base}/batches", {**made, "kind": "DISCOUNT"})
    assert wrong.status_code == 422 and "needs discount_percent" in wrong.text and "满50减10" in wrong.text
    assert post_form(client, console, f"{base}/batches", made).status_code == 303
    batches = client.get(f"{API}/merchants/{market.merchant_id}/batches", headers=market.owner).json()
    new = next(b for b in batches if b["title"] == "满50减10")
    assert (new["reduce_cost_cents"], new["least_cost_cents"], new["valid_days"]) == (1000, 5000, 7)
    assert new["transferable"] and new["stock"] == 20 and new["status"] == "active"

    paused = post_form(client, console, f"{base}/batches/{batch}/status", {"status": "paused"})
    assert paused.status_code == 303
    assert "满30减5" not in page_of(client, f"/market/stores/{market.stores[0]}").text  # no longer offered
    page = page_of(client, console).text
    assert "Resume" in page and "Paused" in page
    again = post_form(client, console, f"{base}/batches/{batch}/status", {"status": "paused"})
    assert again.status_code == 409 and "cannot become" in again.text

    unknown = post_form(client, console, f"{base}/staff", {"username": "nobody", "role": "merchant_clerk"})
    assert unknown.status_code == 422 and "nobody" in unknown.text
    assert post_form(client, console, f"{base}/staff", {"username": "resident"}).status_code == 303
    assert "resident" in page_of(client, console).text.split(f'id="staff-{market.merchant_id}"')[1]

    issued = post_form(client, console, f"{base}/pos-keys", {"name": "till 2"})
    assert issued.status_code == 200 and 'class="secret"' in issued.text and "till 2" in issued.text
    keys = client.get(f"{API}/merchants/{market.merchant_id}/pos-keys", headers=market.owner).json()
    second = next(k for k in keys if k["name"] == "till 2")
    assert post_form(client, console, f"{base}/pos-keys/{second['id']}/revoke", {}).status_code == 303
    assert 'class="secret"' not in page_of(client, console).text  # shown once


REPORT_DATA = re.compile(r'<script type="application/json" id="market-report-data">(.*?)</script>', re.S)
CSV_LINK = re.compile(r'href="(/market/merchant/\d+/reports\.csv\?[^"]*)"')


def _report_day(client: TestClient) -> date:
    """Today in the platform's zone, the report's last day by default."""
    return datetime.now(UTC).astimezone(ZoneInfo(client.app.state.settings.timezone)).date()  # type: ignore[attr-defined]


def _cells(page: str, key: str) -> list[str]:
    """The data cells of the table row of ``key`` (a day, batch id or store id)."""
    row = page.split(f'<tr id="report-{key}">', 1)[1].split("</tr>", 1)[0]
    return re.findall(r"<td>([^<]*)</td>", row)


def _chart(page: str) -> dict[str, Any]:
    found = REPORT_DATA.search(page)
    assert found, "no chart data in the page"
    return dict(json.loads(found.group(1)))


def test_the_owner_reads_the_coupon_report_as_table_chart_and_csv(
    client: TestClient, database: Database
) -> None:
    market, batch = _world(client, database)
    other = make_batch(client, market, title="八折", kind="DISCOUNT", discount_percent=20)
    code = _claimed_code(client, market, batch)
    redeemed = client.post(
        f"{API}/merchants/{market.merchant_id}/redemptions",
        json={
            "codes": [code],
            "store_id": market.stores[0],
            "amount_cents": 4000,
            "client_key": "page-rep-01",
        },
        headers=market.till,
    )
    assert redeemed.status_code == 201, redeemed.text
    today = _report_day(client).isoformat()
    url = f"/market/merchant/{market.merchant_id}/reports"

    as_user(client, "owner1")
    assert f'href="{url}"' in page_of(client, "/market/merchant").text
    page = page_of(client, url).text
    assert "邻里面馆" in page and "/static/vendor/echarts/echarts.min.js" in page
    assert "/static/js/market-report.js" in page and f'value="{today}"' in page
    assert (
        f'<option value="{batch}">满30减5</option>' in page
        and f'<option value="{other}">八折</option>' in page
    )
    # view, claim, redeem, expire, transfer (count, people), value, claim rate (no views), redemption rate
    assert _cells(page, today) == ["0", "0", "1", "1", "1", "1", "0", "0", "0", "0", "¥5.00", "—", "100.0%"]
    yesterday = (_report_day(client) - timedelta(days=1)).isoformat()
    assert _cells(page, yesterday)[:6] == ["0"] * 6 and _cells(page, yesterday)[-2:] == ["—", "—"]
    summary = page.split('data-testid="summary">', 1)[1].split("</p>", 1)[0]
    assert "Claims: 1" in summary and "Redemptions: 1" in summary and "Value redeemed: ¥5.00" in summary
    chart = _chart(page)
    assert chart["group"] == "day" and len(chart["labels"]) == 30 and chart["labels"][-1] == today
    assert [s["name"] for s in chart["series"]] == ["Views", "Claims", "Redemptions"]
    assert [s["data"][-1] for s in chart["series"]] == [0, 1, 1]

    per_batch = page_of(client, f"{url}?group=batch").text
    assert _cells(per_batch, str(batch))[2:6] == ["1", "1", "1", "1"] and "¥5.00" in _cells(
        per_batch, str(batch)
    )
    assert '<th scope="row">满30减5</th>' in per_batch and '<th scope="row">八折</th>' in per_batch
    bars = _chart(per_batch)
    assert bars["group"] == "batch" and "满30减5" in bars["labels"] and "八折" in bars["labels"]
    assert [s["kind"] for s in bars["series"]] == ["claim", "redeem"]
    assert bars["series"][0]["data"][bars["labels"].index("满30减5")] == 1
    only_other = page_of(client, f"{url}?batch_id={other}").text
    assert f'<option value="{other}" selected>' in only_other and _cells(only_other, today)[2] == "0"

    link = CSV_LINK.search(per_batch)
    assert link
    exported = client.get(html.unescape(link.group(1)))
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert exported.headers["content-disposition"].startswith("attachment;")
    lines = exported.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("batch,name,view_count,view_people,claim_count")
    assert f"{batch},满30减5,0,0,1,1,1,1,0,0,0,0,5.00,,1.0000" in lines
    daily = client.get(f"{url}.csv").content.decode("utf-8-sig").splitlines()
    assert daily[0].startswith("day,name,view_count") and len(daily) == 31
    assert daily[-1] == f"{today},{today},0,0,1,1,1,1,0,0,0,0,5.00,,1.0000"


def test_the_report_refuses_a_long_range_and_everyone_but_owners(
    client: TestClient, database: Database
) -> None:
    market, _batch = _world(client, database)
    url = f"/market/merchant/{market.merchant_id}/reports"
    today = _report_day(client)
    as_user(client, "owner1")
    too_long = client.get(f"{url}?from={(today - timedelta(days=69)).isoformat()}", headers=HTML)
    assert too_long.status_code == 422
    assert 'id="report-problem"' in too_long.text and "at most 62 days" in too_long.text
    assert "market-report-data" not in too_long.text and "邻里面馆" in too_long.text  # the form stays
    backwards = client.get(f"{url}?from={today.isoformat()}&to={(today - timedelta(days=3)).isoformat()}")
    assert backwards.status_code == 422 and "ends before it starts" in backwards.text
    not_a_day = client.get(f"{url}?from=yesterday", headers=HTML)
    assert not_a_day.status_code == 422 and "give a date" in not_a_day.text
    csv_too_long = client.get(f"{url}.csv?from={(today - timedelta(days=69)).isoformat()}", headers=HTML)
    assert csv_too_long.status_code == 422

    for who in ("clerk1", "resident"):
        as_user(client, who)
        assert client.get(url, headers=HTML).status_code == 403
        assert client.get(f"{url}.csv", headers=HTML).status_code == 403
    assert f'href="{url}"' not in page_of(client, "/market/merchant").text  # resident: no shop
    as_user(client, "clerk1")
    assert f'href="{url}"' not in page_of(client, "/market/merchant").text  # a clerk redeems only
    as_user(client, None)
    anonymous = client.get(url, headers=HTML, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=")


def test_the_operator_reads_the_revenue_and_books_rules_fees_and_statements(
    client: TestClient, database: Database
) -> None:
    market, batch = _world(client, database)
    month = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    as_user(client, "operator1")
    revenue = "/console/market/revenue"
    assert "No rules" in page_of(client, revenue).text
    added = post_form(client, revenue, f"{revenue}/rules", {"category": "food", "rate_percent": "2.5"})
    assert added.status_code == 303, added.text
    refused = post_form(
        client, revenue, f"{revenue}/rules", {"merchant": "no-such-shop", "rate_percent": "1"}
    )
    assert refused.status_code == 404 and "no-such-shop" in html.unescape(refused.text)
    code = _merchant_code(client, market)
    fee = {"merchant": code, "kind": "listing_fee", "amount": "88.80", "reference": "INV-1", "memo": "推荐位"}
    assert post_form(client, revenue, f"{revenue}/charges", fee).status_code == 303
    again = post_form(client, revenue, f"{revenue}/charges", fee)  # the same invoice twice
    assert again.status_code == 422
    page = page_of(client, f"{revenue}?month={month}")
    assert "2.50%" in page.text and "¥88.80" in page.text
    chart = json.loads(re.search(r'id="market-report-data">(.*?)</script>', page.text, re.S).group(1))  # type: ignore[union-attr]
    assert chart["labels"][-1] == month and chart["series"][1]["data"][-1] == 88.8
    statement = page_of(client, f"/market/merchant/{market.merchant_id}/statements?month={month}")
    assert "推荐位" in statement.text and "¥88.80" in statement.text
    assert client.get(f"/market/merchant/{market.merchant_id}/statements/{month}.pdf").content.startswith(
        b"%PDF"
    )
    csv_file = client.get(f"/market/merchant/{market.merchant_id}/statements/{month}.csv")
    assert "closing_balance_yuan,88.80" in csv_file.content.decode("utf-8-sig")

    as_user(client, "owner1")
    assert "¥88.80" in page_of(client, f"/market/merchant/{market.merchant_id}/statements").text
    assert client.get(revenue, headers=HTML).status_code == 403
    as_user(client, "clerk1")
    assert client.get(f"/market/merchant/{market.merchant_id}/statements", headers=HTML).status_code == 403
    del batch


def _merchant_code(client: TestClient, market: Market) -> str:
    answer = client.get(f"{API}/merchants/{market.merchant_id}", headers=market.operator)
    return str(answer.json()["code"])
