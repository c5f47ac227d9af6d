"""The data exchange console: a department's resources and loading their data (an invalid file's errors on
the page), the requests it answers (approving fewer fields) and the grants it gave (revoking one); the
catalogue and the request form of a department asking for data, and its grants with a CSV download that
reads only the granted columns and leaves its evidence in the audit chain. Each page is 403 for those who
may not use it.

The pages are read in English (the locale cookie), so that the assertions hold before and after the Chinese
translations arrive; names in the data are Chinese.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from cityhub.domains.exchange.models import GrantUsage
from cityhub.kernel.db import Database
from cityhub.kernel.models import AuditRecord
from tests.domains.exchange.world import API, CSV, Exchange, build_exchange, published, registered
from tests.web.factories import HTML, as_user, csrf_token, page_of

CONSOLE = "/console/exchange"
CODE = "stats-population"
ASKED_FIELDS = ["district", "year", "population"]


def _post(
    client: TestClient, page: str, action: str, data: dict[str, Any], files: dict[str, Any] | None = None
) -> Response:
    """Submit a form found on ``page`` (its CSRF token); values may be lists, as ticked checkboxes are."""
    token = csrf_token(page_of(client, page).text)
    return client.post(
        action, data={**data, "csrf_token": token}, files=files, headers=HTML, follow_redirects=False
    )


def _ask(client: TestClient, fields: list[str] = ASKED_FIELDS, **overrides: Any) -> Response:
    form = f"{CONSOLE}/resources/{CODE}/request"
    data = {"consumer": "civil", "purpose": "养老服务规划", "fields": fields, "days": "30", **overrides}
    return _post(client, form, form, data)


def _pending_request_id(client: TestClient, world: Exchange) -> int:
    queue = client.get(f"{API}/requests", params={"status": "pending"}, headers=world.owner).json()
    return int(queue[0]["id"])


def _approved_grant(client: TestClient, world: Exchange) -> int:
    """A conditional resource asked for by civil affairs (three fields) and approved with two."""
    published(client, world)
    as_user(client, "civil1")
    assert _ask(client).status_code == 303
    request_id = _pending_request_id(client, world)
    as_user(client, "stats1")
    answer = {"decision": "approve", "fields": ["district", "population"], "days": "10"}
    approved = _post(client, CONSOLE, f"{CONSOLE}/requests/{request_id}/answer", answer)
    assert approved.status_code == 303, approved.text
    grants = client.get(f"{API}/grants", params={"side": "owner"}, headers=world.owner).json()
    return int(grants[0]["id"])


def test_each_part_of_the_console_opens_for_its_staff_only(client: TestClient, database: Database) -> None:
    world = build_exchange(client, database)
    registered(client, world)  # a draft of the statistics bureau
    published(client, world, "stats-open", sharing_class="unconditional", sharing_condition=None)

    as_user(client, "stats1")
    console = page_of(client, CONSOLE).text
    for part in ("My resources", "Requests to answer", "Grants given", "My requests", "My grants"):
        assert part in console
    assert f'href="{CONSOLE}/resources/{CODE}"' in console and "Draft" in console
    resource = page_of(client, f"{CONSOLE}/resources/{CODE}").text
    assert "Load data" in resource and 'enctype="multipart/form-data"' in resource
    assert "No data has been loaded yet." in resource
    assert "Data exchange" in page_of(client, "/").text  # the console's tile

    as_user(client, "civil1")
    assert "My grants" in page_of(client, CONSOLE).text
    catalogue = page_of(client, f"{CONSOLE}/catalogue").text
    assert "stats-open" in catalogue and CODE not in catalogue  # published ones only, not others' drafts
    assert f'href="{CONSOLE}/resources/stats-open/request"' in catalogue
    form = page_of(client, f"{CONSOLE}/resources/stats-open/request").text
    assert 'name="fields" value="district"' in form and '<option value="civil"' in form
    assert client.get(f"{CONSOLE}/resources/{CODE}", headers=HTML).status_code == 403  # another's resource
    assert client.get(f"{CONSOLE}/resources/{CODE}/request", headers=HTML).status_code == 404  # a draft

    for outsider in ("resident", "operator1"):  # neither manages nor asks for a department
        as_user(client, outsider)
        for url in (CONSOLE, f"{CONSOLE}/catalogue", f"{CONSOLE}/resources/stats-open/request"):
            assert client.get(url, headers=HTML).status_code == 403, (outsider, url)
    assert page_of(client, f"{CONSOLE}/resources/{CODE}")  # the operator administers every resource
    as_user(client, "resident")
    assert client.get(f"{CONSOLE}/resources/{CODE}", headers=HTML).status_code == 403
    as_user(client, None)
    anonymous = client.get(CONSOLE, headers=HTML, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


def test_the_load_form_loads_a_version_and_shows_an_invalid_files_errors(
    client: TestClient, database: Database
) -> None:
    world = build_exchange(client, database)
    registered(client, world)
    page = f"{CONSOLE}/resources/{CODE}"
    action = f"{page}/versions"

    as_user(client, "stats1")
    loaded = _post(
        client, page, action, {"note": "2025 年度"}, {"file": ("人口.csv", CSV.encode(), "text/csv")}
    )
    assert loaded.status_code == 303 and loaded.headers["location"] == f"{page}#version-1"
    first = page_of(client, page).text
    assert "Version 1 is loaded and current: 3 rows." in first and "Current" in first and "2025 年度" in first

    broken = CSV.replace("1187000", "很多").replace("541000", "")
    refused = _post(client, page, action, {}, {"file": ("人口.csv", broken.encode(), "text/csv")})
    assert refused.status_code == 303 and refused.headers["location"] == f"{page}#version-2"
    second = page_of(client, page).text
    assert "Version 2 has 2 errors and is not used." in second and "Invalid: 2 errors" in second
    errors = second[second.index('data-testid="errors-2"') :]
    assert "not a whole number" in errors and "a value is required" in errors and "population" in errors
    current = client.get(f"{API}/resources/{CODE}", headers=world.owner).json()["current_version"]
    assert current == 1  # the version departments read stays the valid one

    wrong_kind = _post(client, page, action, {}, {"file": ("人口.txt", CSV.encode(), "text/plain")})
    assert wrong_kind.status_code == 422 and 'role="alert"' in wrong_kind.text
    assert "Load a .csv, .json or .xlsx file." in wrong_kind.text
    no_file = _post(client, page, action, {"note": "忘了文件"})
    assert no_file.status_code == 422 and "Choose a CSV, JSON or Excel (.xlsx) file to load." in no_file.text
    assert 'value="忘了文件"' in no_file.text  # the note is kept

    as_user(client, "civil1")
    stranger = _post(client, CONSOLE, action, {}, {"file": ("x.csv", CSV.encode(), "text/csv")})
    assert stranger.status_code == 403
    no_token = client.post(action, files={"file": ("x.csv", CSV.encode(), "text/csv")}, headers=HTML)
    assert no_token.status_code == 403


def test_a_request_is_approved_narrower_and_downloaded_with_the_granted_columns_only(
    client: TestClient, database: Database
) -> None:
    world = build_exchange(client, database)
    published(client, world)

    as_user(client, "civil1")
    none_ticked = _ask(client, fields=[])
    assert none_ticked.status_code == 422 and "Tick the fields your department needs." in none_ticked.text
    assert "养老服务规划" in none_ticked.text  # the purpose is kept
    asked = _ask(client)
    assert asked.status_code == 303 and asked.headers["location"] == f"{CONSOLE}#asked"
    mine = page_of(client, CONSOLE).text
    assert "Your request is sent; the owner answers by" in mine and "Waiting for an answer" in mine

    request_id = _pending_request_id(client, world)
    answer_url = f"{CONSOLE}/requests/{request_id}/answer"
    as_user(client, "health1")  # not the owner
    assert _post(client, CONSOLE, answer_url, {"decision": "approve"}).status_code == 403

    as_user(client, "stats1")
    queue = page_of(client, CONSOLE).text
    assert f'id="request-{request_id}"' in queue and "养老服务规划" in queue and "civil" in queue
    assert queue.count('name="fields"') == 3 and "常住人口" in queue
    no_reason = _post(client, CONSOLE, answer_url, {"decision": "reject", "reason": " "})
    assert no_reason.status_code == 422 and "a rejection needs its reason" in no_reason.text
    answer = {"decision": "approve", "fields": ["district", "population"], "days": "10"}
    approved = _post(client, CONSOLE, answer_url, answer)
    assert approved.status_code == 303 and approved.headers["location"] == f"{CONSOLE}#to-answer"
    given = page_of(client, CONSOLE).text
    assert "The request is approved: its grant is in force." in given
    assert "No request is waiting for an answer." in given and "In force" in given
    grant = client.get(f"{API}/grants", params={"side": "owner"}, headers=world.owner).json()[0]
    assert grant["fields"] == ["district", "population"]
    twice = _post(client, CONSOLE, answer_url, answer)  # say, a colleague's tab still showed the request
    assert twice.status_code == 409 and "This request has been answered." in twice.text

    as_user(client, "civil1")
    held = page_of(client, CONSOLE).text
    download = f"{CONSOLE}/grants/{grant['id']}.csv"
    assert f'href="{download}"' in held and "Granted" in held
    read = client.get(download)
    assert read.status_code == 200 and read.headers["content-type"].startswith("text/csv")
    assert read.headers["cache-control"] == "private, no-store"
    rows = list(csv.reader(io.StringIO(read.content.decode("utf-8-sig"))))
    assert rows == [
        ["district", "population"],
        ["西湖区", "1187000"],
        ["滨江区", "541000"],
        ["上城区", "1326000"],
    ]
    with database.reading() as session:
        evidence = session.scalars(
            select(AuditRecord).where(AuditRecord.action == "exchange.grant.read")
        ).all()
        usage = session.scalars(select(GrantUsage)).all()
    assert [(record.object_id, record.details["rows"]) for record in evidence] == [(str(grant["id"]), 3)]
    assert [(day.reads, day.rows) for day in usage] == [(1, 3)]

    as_user(client, "health1")  # another department holds no grant
    assert client.get(download).status_code == 403


def test_the_owner_revokes_a_grant_and_its_download_stops(client: TestClient, database: Database) -> None:
    world = build_exchange(client, database)
    grant_id = _approved_grant(client, world)
    revoke_url = f"{CONSOLE}/grants/{grant_id}/revoke"

    as_user(client, "civil1")
    assert _post(client, CONSOLE, revoke_url, {"reason": "越权"}).status_code == 403  # the consumer cannot

    as_user(client, "stats1")
    no_reason = _post(client, CONSOLE, revoke_url, {"reason": ""})
    assert no_reason.status_code == 422 and 'role="alert"' in no_reason.text
    revoked = _post(client, CONSOLE, revoke_url, {"reason": "规划已完成"})
    assert revoked.status_code == 303 and revoked.headers["location"] == f"{CONSOLE}#given"
    page = page_of(client, CONSOLE).text
    assert "The grant is revoked" in page and "Revoked" in page and "规划已完成" in page

    as_user(client, "civil1")
    held = page_of(client, CONSOLE).text
    assert f"/grants/{grant_id}.csv" not in held and "规划已完成" in held
    assert client.get(f"{CONSOLE}/grants/{grant_id}.csv").status_code == 403


def test_a_resource_that_is_not_shared_cannot_be_asked_for(client: TestClient, database: Database) -> None:
    world = build_exchange(client, database)
    basis = "《统计法》第二十五条"
    published(client, world, "stats-closed", sharing_class="none", sharing_condition=None, legal_basis=basis)
    as_user(client, "civil1")
    page = page_of(client, f"{CONSOLE}/resources/stats-closed/request").text
    assert "This resource is not shared." in page and basis in page and 'id="request-form"' not in page
    form = f"{CONSOLE}/resources/stats-closed/request"
    data = {"consumer": "civil", "purpose": "核对", "fields": "year", "days": "30"}
    refused = _post(client, form, form, data)  # sent anyway (the form was open before the class changed)
    assert refused.status_code == 409 and 'role="alert"' in refused.text


def test_the_consumer_issues_a_key_for_a_grant_and_sees_its_secret_once(
    client: TestClient, database: Database
) -> None:
    world = build_exchange(client, database)
    grant_id = _approved_grant(client, world)
    issue_url = f"{CONSOLE}/grants/{grant_id}/keys"

    as_user(client, "stats1")  # the owner holds no such grant
    assert _post(client, CONSOLE, issue_url, {}).status_code == 404

    as_user(client, "civil1")
    issued = _post(client, CONSOLE, issue_url, {})
    assert issued.status_code == 200, issued.text
    shown = issued.text[issued.text.index('data-testid="issued-key"') :]
    secret = shown[shown.index("<code>") + len("<code>") : shown.index("</code>")]
    assert client.get(f"{API}/grants/{grant_id}/rows", headers={"X-API-Key": secret}).status_code == 200
    again = page_of(client, CONSOLE).text
    assert (
        secret not in again and f'data-testid="grant-keys-{grant_id}"' in again
    )  # listed, never shown again
