"""The service catalogue over the API: import (all or nothing, city-wide permission, audited), browsing,
search in Chinese and English, favourites and recently used items — on both databases."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import func, select

from cityhub.domains.services.models import Item
from cityhub.kernel.models import AuditRecord
from tests.domains.services.catalogue_data import CATALOGUE
from tests.factories import bearer, build_town, make_user

API = "/api/v1/services"


@pytest.fixture
def town(database):
    return build_town(database)


@pytest.fixture
def operator(client, database, town) -> dict[str, str]:
    make_user(database, "operator1", [("operator", town.city)])
    return bearer(client, "operator1")


@pytest.fixture
def loaded(client, operator) -> dict[str, str]:
    response = client.post(f"{API}/catalogue", json=CATALOGUE, headers=operator)
    assert response.status_code == 200, response.text
    return operator


def codes(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["code"] for item in response.json()["items"]]


def test_import_creates_then_updates_by_code_and_is_audited(client, database, operator) -> None:
    first = client.post(f"{API}/catalogue", json=CATALOGUE, headers=operator)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "created": {"departments": 3, "categories": 3, "life_events": 2, "items": 6},
        "updated": {},
    }
    renamed = copy.deepcopy(CATALOGUE)
    renamed["items"][0]["name"]["en"] = "Fund balance"
    again = client.post(f"{API}/catalogue", json=renamed, headers=operator)
    assert again.json()["created"] == {} and again.json()["updated"]["items"] == 6
    assert client.get(f"{API}/items/gjj-balance").json()["name"]["en"] == "Fund balance"
    with database.reading() as session:
        assert session.scalar(select(func.count()).select_from(Item)) == 6
        actions = session.scalars(select(AuditRecord.action)).all()
    assert actions.count("services.catalogue.imported") == 2


def test_an_import_with_a_broken_reference_writes_nothing(client, database, operator) -> None:
    broken = copy.deepcopy(CATALOGUE)
    broken["items"][1]["department"] = "nowhere"
    broken["items"][2]["life_events"] = ["never"]
    response = client.post(f"{API}/catalogue", json=broken, headers=operator)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert {(e["item"], e["field"], e["code"]) for e in response.json()["errors"]} == {
        ("gjj-withdraw-purchase", "department", "nowhere"),
        ("crj-passport", "life_event", "never"),
    }
    assert client.get(f"{API}/departments").json() == [], "the departments of the failed import stayed"


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c["items"][0].update(kind="lottery"),
        lambda c: c["items"][0].update(code="Not A Code"),
        lambda c: c["departments"][0].update(icon="skull"),
        lambda c: c["items"].append(copy.deepcopy(c["items"][0])),
        lambda c: c["items"][0].update(name={"zh_CN": "只有中文"}),
        lambda c: c.update(unknown=[]),
    ],
)
def test_malformed_catalogues_are_refused_with_a_problem(client, operator, change) -> None:
    broken = copy.deepcopy(CATALOGUE)
    change(broken)
    response = client.post(f"{API}/catalogue", json=broken, headers=operator)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_importing_needs_the_permission_over_the_whole_city(client, database, town) -> None:
    assert client.post(f"{API}/catalogue", json=CATALOGUE).status_code == 401
    make_user(database, "district_operator", [("operator", town.district_a)])
    make_user(database, "resident1", [("resident", town.community_a)])
    for username in ("district_operator", "resident1"):
        response = client.post(f"{API}/catalogue", json=CATALOGUE, headers=bearer(client, username))
        assert response.status_code == 403, f"{username}: {response.status_code}"


def test_the_catalogue_is_browsable_without_logging_in(client, loaded) -> None:
    departments = {d["code"]: d for d in client.get(f"{API}/departments").json()}
    assert departments["gjj"]["items"] == 2 and departments["gjj"]["phone"] == "12329"
    assert departments["rsj"]["items"] == 1, "an unpublished item is not counted"
    events = {e["code"]: e for e in client.get(f"{API}/life-events").json()}
    assert events["buying-a-home"]["items"] == 2
    assert events["retiring"]["summary"] == {"zh_CN": "退休前后要办的事", "en": "Before and after"}
    assert [c["code"] for c in client.get(f"{API}/categories").json()] == [
        "housing",
        "exit-entry",
        "social-security",
    ]
    assert codes(client.get(f"{API}/items", params={"department": "crj"})) == ["crj-passport", "crj-guide"]
    assert codes(client.get(f"{API}/items", params={"life_event": "buying-a-home", "kind": "form"})) == [
        "gjj-withdraw-purchase"
    ]
    assert codes(client.get(f"{API}/items", params={"category": "social-security"})) == ["rsj-pension"]
    item = client.get(f"{API}/items/gjj-balance").json()
    assert item["department"] == "gjj" and item["life_events"] == ["buying-a-home"]
    assert item["keywords"]["zh_CN"] == ["公积金", "余额"]


def test_unknown_codes_and_unpublished_items_are_not_found(client, loaded) -> None:
    for path in ("/items/rsj-hidden", "/items/nothing"):
        response = client.get(API + path)
        assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"
    assert client.get(f"{API}/items", params={"department": "nowhere"}).status_code == 404
    assert client.get(f"{API}/items", params={"kind": "lottery"}).status_code == 422


def test_unpublished_items_are_listed_for_catalogue_managers_only(client, database, town, loaded) -> None:
    wanted = {"include_unpublished": "true", "department": "rsj"}
    assert client.get(f"{API}/items", params=wanted).status_code == 401
    make_user(database, "resident1", [("resident", town.community_a)])
    assert client.get(f"{API}/items", params=wanted, headers=bearer(client, "resident1")).status_code == 403
    assert codes(client.get(f"{API}/items", params=wanted, headers=loaded)) == ["rsj-pension", "rsj-hidden"]


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("公积金", "gjj-balance"),  # a keyword and a word of the name
        ("提取公积金", "gjj-withdraw-purchase"),  # the order of the words does not matter
        ("怎么办护照", "crj-passport"),  # stop words are left out
        ("港澳通行证", "crj-guide"),
        ("养老", "rsj-pension"),  # a part of 养老保险, found by jieba's search mode
        ("Passport", "crj-passport"),  # English, any case
        ("pens", "rsj-pension"),  # a prefix while typing
        ("provident fund balance", "gjj-balance"),
    ],
)
def test_search_finds_items_in_chinese_and_english(client, loaded, query, first) -> None:
    found = codes(client.get(f"{API}/items", params={"q": query}))
    assert found and found[0] == first, f"{query!r} -> {found}"
    assert "rsj-hidden" not in found


def test_search_ranks_by_matched_terms_and_pages(client, loaded) -> None:
    assert codes(client.get(f"{API}/items", params={"q": "公积金 余额"}))[0] == "gjj-balance"
    page = client.get(f"{API}/items", params={"q": "公积金", "limit": 1, "offset": 1}).json()
    assert page["total"] == 2 and len(page["items"]) == 1 and page["offset"] == 1
    assert codes(client.get(f"{API}/items", params={"q": "火星签证"})) == []
    assert codes(client.get(f"{API}/items", params={"q": "的 the"})) == [], "only stop words: nothing"
    assert codes(client.get(f"{API}/items", params={"q": "护照", "department": "gjj"})) == []
    assert client.get(f"{API}/items", params={"q": "x" * 201}).status_code == 422


def test_search_pages_carry_each_item_as_the_item_route_shows_it(client, operator) -> None:
    """The page is ranked on ids and its wide rows, codes and life events joined in one statement: each item
    must still be the whole item, its life events once each and in catalogue order."""
    catalogue = copy.deepcopy(CATALOGUE)
    balance = next(item for item in catalogue["items"] if item["code"] == "gjj-balance")
    balance["life_events"] = ["retiring", "buying-a-home"]
    balance["fields"] = [{"key": "balance", "label": {"zh_CN": "余额", "en": "Balance"}, "type": "money"}]
    assert client.post(f"{API}/catalogue", json=catalogue, headers=operator).status_code == 200
    shown = client.get(f"{API}/items/gjj-balance").json()
    assert shown["life_events"] == ["buying-a-home", "retiring"] and shown["fields"][0]["type"] == "money"
    for params in (
        {"q": "公积金"},
        {"q": "公积金 护照 养老"},
        {},
        {"q": "公积金", "life_event": "retiring"},
        {"q": "公积金", "kind": "query", "department": "gjj", "category": "housing"},
        {"q": "社保", "include_unpublished": "true"},
    ):
        page = client.get(f"{API}/items", params=params | {"limit": 200}, headers=operator).json()
        assert page["total"] == len(page["items"]) > 0, params
        for item in page["items"]:
            assert item == client.get(f"{API}/items/{item['code']}", headers=operator).json() or (
                item["code"] == "rsj-hidden" and not item["published"]
            )
    assert codes(client.get(f"{API}/items", params={"q": "公积金", "life_event": "retiring"})) == [
        "gjj-balance"
    ]
    assert codes(client.get(f"{API}/items", params={"q": "公积金 护照 养老", "limit": 2, "offset": 1})) == [
        codes(client.get(f"{API}/items", params={"q": "公积金 护照 养老"}))[i] for i in (1, 2)
    ]


def test_a_search_page_past_the_end_still_counts_and_paging_is_checked(client, loaded) -> None:
    past = client.get(f"{API}/items", params={"q": "公积金", "offset": 5})
    assert past.status_code == 200 and past.headers["content-type"] == "application/json"
    assert past.json() == {"items": [], "total": 2, "limit": 50, "offset": 5}
    assert client.get(f"{API}/items", params={"offset": 50}).json()["total"] == 5
    for wrong in ({"limit": 0}, {"limit": 201}, {"offset": -1}):
        assert client.get(f"{API}/items", params=wrong).status_code == 422, wrong


def test_favourites_and_recently_used_belong_to_the_signed_in_resident(
    client, database, town, loaded
) -> None:
    make_user(database, "resident1", [("resident", town.community_a)])
    me = bearer(client, "resident1")
    assert client.get(f"{API}/me/favourites").status_code == 401
    assert client.put(f"{API}/me/favourites/crj-passport", headers=me).status_code == 204
    assert client.put(f"{API}/me/favourites/crj-passport", headers=me).status_code == 204  # idempotent
    assert client.put(f"{API}/me/favourites/gjj-balance", headers=me).status_code == 204
    favourites = client.get(f"{API}/me/favourites", headers=me).json()
    assert [f["item"]["code"] for f in favourites] == ["gjj-balance", "crj-passport"]
    assert client.delete(f"{API}/me/favourites/crj-passport", headers=me).status_code == 204
    assert [f["item"]["code"] for f in client.get(f"{API}/me/favourites", headers=me).json()] == [
        "gjj-balance"
    ]
    assert client.put(f"{API}/me/favourites/rsj-hidden", headers=me).status_code == 404
    for code in ("gjj-balance", "crj-guide", "gjj-balance"):
        assert client.post(f"{API}/me/recent/{code}", headers=me).status_code == 204
    assert [r["item"]["code"] for r in client.get(f"{API}/me/recent", headers=me).json()] == [
        "gjj-balance",
        "crj-guide",
    ]
    make_user(database, "resident2", [("resident", town.community_b)])
    other = bearer(client, "resident2")
    assert client.get(f"{API}/me/favourites", headers=other).json() == []
    assert client.get(f"{API}/me/recent", headers=other).json() == []


def test_recently_used_keeps_the_latest_twenty(client, database, town, loaded) -> None:
    many = {
        "items": [
            {
                **CATALOGUE["items"][0],
                "code": f"gjj-extra-{n}",
                "name": {"zh_CN": f"事项{n}", "en": f"Item {n}"},
            }
            for n in range(22)
        ]
    }
    assert client.post(f"{API}/catalogue", json=many, headers=loaded).status_code == 200
    make_user(database, "resident1", [("resident", town.community_a)])
    me = bearer(client, "resident1")
    for n in range(22):
        assert client.post(f"{API}/me/recent/gjj-extra-{n}", headers=me).status_code == 204
    recent = [r["item"]["code"] for r in client.get(f"{API}/me/recent", headers=me).json()]
    assert recent == [f"gjj-extra-{n}" for n in range(21, 1, -1)]
