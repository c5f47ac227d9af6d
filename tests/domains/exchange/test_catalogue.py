"""The catalogue: departments register, change, publish and retire resources; who sees what; loads as
versions with validation reports (both databases)."""

from __future__ import annotations

from sqlalchemy import func, select

from cityhub.domains.exchange.models import Row
from tests.domains.exchange.world import (
    API,
    CSV,
    build_exchange,
    loaded,
    published,
    registered,
    resource_body,
)


def test_a_department_registers_loads_and_publishes(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = registered(client, world)
    entry = client.get(f"{API}/resources/{code}", headers=world.owner).json()
    assert entry["status"] == "draft" and entry["provider"] == "stats" and entry["current_version"] is None
    assert client.get(f"{API}/resources/{code}", headers=world.consumer).status_code == 404  # a draft
    refused = client.post(f"{API}/resources/{code}/status", json={"status": "published"}, headers=world.owner)
    assert refused.status_code == 409 and refused.json()["type"].endswith("no-data")

    version = loaded(client, world, code)
    assert (version["number"], version["rows"], version["valid"], version["current"]) == (1, 3, True, True)
    assert (
        client.post(
            f"{API}/resources/{code}/status", json={"status": "published"}, headers=world.owner
        ).status_code
        == 200
    )
    for who in (world.consumer, world.resident):
        assert client.get(f"{API}/resources/{code}", headers=who).json()["rows"] == 3
    assert client.get(f"{API}/resources/{code}").status_code == 200  # open: anonymous too
    with database.reading() as session:
        assert session.scalar(select(func.count()).select_from(Row)) == 3


def test_only_the_provider_manages(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    mine = client.post(f"{API}/resources", json=resource_body(provider="stats"), headers=world.consumer)
    assert mine.status_code == 403
    code = registered(client, world)
    for action in (
        client.put(f"{API}/resources/{code}", json=resource_body(summary="改"), headers=world.consumer),
        client.post(
            f"{API}/resources/{code}/versions",
            content=CSV.encode(),
            headers={**world.consumer, "Content-Type": "text/csv"},
        ),
        client.post(f"{API}/resources/{code}/status", json={"status": "retired"}, headers=world.consumer),
    ):
        assert action.status_code == 403, action.text
    assert (
        client.post(f"{API}/resources", json=resource_body(), headers=world.owner).status_code == 409
    )  # code taken
    assert (
        client.post(f"{API}/resources", json=resource_body("x1"), headers=world.resident).status_code == 403
    )


def test_entries_are_checked(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    for body in (
        resource_body(sharing_class="none"),  # no legal basis
        resource_body(sharing_condition=None),  # conditional without its condition
        resource_body(data_items=[{"name": "a", "title": "A"}, {"name": "a", "title": "B"}]),
        resource_body(data_items=[{"name": "bad name", "title": "A"}]),
        resource_body(code="空格 code"),
        resource_body(code="requests"),  # the portal's data-request board is /data/requests
    ):
        answer = client.post(f"{API}/resources", json=body, headers=world.owner)
        assert answer.status_code == 422, body
        assert answer.headers["content-type"].startswith("application/problem+json")


def test_a_bad_file_is_kept_with_its_report_and_never_current(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = published(client, world)
    bad = (
        "district,year,population,elderly_share,surveyed_on,extra\n"
        ",2025,abc,0.2,2025-13-01,x\n"
        "西湖区,2026,1,,,y\n"
    )
    version = loaded(client, world, code, bad)
    assert version["valid"] is False and version["current"] is False and version["rows"] == 0
    messages = {(error["row"], error["field"]) for error in version["errors"]}
    assert {(None, "extra"), (1, "district"), (1, "population"), (1, "surveyed_on")} <= messages
    assert version["error_count"] == 4
    entry = client.get(f"{API}/resources/{code}", headers=world.owner).json()
    assert entry["current_version"] == 1 and entry["rows"] == 3  # the good version stays current
    history = client.get(f"{API}/resources/{code}/versions", headers=world.owner).json()
    assert [(v["number"], v["valid"], v["current"]) for v in history] == [(2, False, False), (1, True, True)]
    with database.reading() as session:
        assert session.scalar(select(func.count()).select_from(Row)) == 3  # the bad rows were rolled back
    changed = client.put(
        f"{API}/resources/{code}",
        json=resource_body(data_items=resource_body()["data_items"][:2]),
        headers=world.owner,
    )
    assert changed.status_code == 409 and changed.json()["type"].endswith("items-fixed")


def test_json_files_and_wrong_content_types(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = registered(client, world)
    rows = [
        {
            "district": "西湖区",
            "year": 2025,
            "population": 1187000,
            "elderly_share": 0.21,
            "surveyed_on": "2025-11-01",
        }
    ]
    answer = client.post(f"{API}/resources/{code}/versions", json=rows, headers=world.owner)
    assert answer.status_code == 201 and answer.json()["valid"] is True and answer.json()["rows"] == 1
    xml = client.post(
        f"{API}/resources/{code}/versions",
        content=b"<a/>",
        headers={**world.owner, "Content-Type": "text/xml"},
    )
    assert xml.status_code == 422
    broken = client.post(
        f"{API}/resources/{code}/versions",
        content=b"{",
        headers={**world.owner, "Content-Type": "application/json"},
    )
    assert broken.status_code == 422 and "JSON" in broken.json()["detail"]


def test_search_and_facets_of_what_one_may_see(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    published(client, world)
    published(
        client, world, "stats-income", name="居民人均可支配收入", keywords=["收入"], open_class="closed"
    )
    registered(client, world, "stats-draft", name="草稿")
    anonymous = client.get(f"{API}/resources").json()
    assert [item["code"] for item in anonymous["items"]] == ["stats-population"]  # open only
    staff = client.get(f"{API}/resources", headers=world.consumer).json()
    assert {item["code"] for item in staff["items"]} == {"stats-population", "stats-income"}
    owner = client.get(f"{API}/resources", headers=world.owner).json()
    assert owner["total"] == 3  # and its own draft
    assert [
        i["code"]
        for i in client.get(f"{API}/resources", params={"q": "收入"}, headers=world.consumer).json()["items"]
    ] == ["stats-income"]
    assert client.get(f"{API}/resources", params={"q": "population"}).json()["total"] == 1
    closed = client.get(f"{API}/resources", params={"open_class": "closed"}, headers=world.consumer).json()
    assert [i["code"] for i in closed["items"]] == ["stats-income"]
    assert client.get(f"{API}/resources", params={"provider": "nope"}).status_code == 404
