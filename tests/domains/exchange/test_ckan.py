"""The CKAN Action API over the open data (both databases): packages are the published open resources,
organizations the departments that provide them, each package's download is its CKAN resource and its
rows are searched with datastore_search; CKAN's envelope and error types, GET and POST, /api/action/."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, update

from cityhub.domains.exchange.models import Resource
from tests.domains.exchange.world import API, Exchange, build_exchange, loaded, published, registered

ACTION = "/api/3/action/"
POPULATION = "stats-population"
DOWNLOAD = "stats-population.csv"
ELDERLY = "civil-elderly"
# The civil affairs department's data: one district without an elderly share (a null to sort).
ELDERLY_CSV = (
    "district,year,population,elderly_share,surveyed_on\n"
    "拱墅区,2024,1100000,,2024-10-01\n"
    "西湖区,2024,1170000,0.2,2024-10-01\n"
    "余杭区,2024,1400000,0.15,2024-10-02\n"
)


def _open_data(client, database) -> Exchange:  # type: ignore[no-untyped-def]
    """Two open resources of two departments, and a closed, a conditionally open and a draft one."""
    world = build_exchange(client, database)
    published(client, world)
    published(client, world, "stats-income", name="居民收入", open_class="closed")
    published(client, world, "stats-survey", name="抽样调查", open_class="conditional")
    registered(client, world, "stats-draft", name="草稿")
    operator = replace(world, owner=world.operator)  # the operator acts for every department
    overrides = {"name": "养老机构床位", "summary": "各区养老机构与床位。", "keywords": ["养老", "人口"]}
    registered(client, operator, ELDERLY, provider="civil", licence="CC-BY-4.0", **overrides)
    loaded(client, operator, ELDERLY, ELDERLY_CSV)
    answer = client.post(
        f"{API}/resources/{ELDERLY}/status", json={"status": "published"}, headers=world.operator
    )
    assert answer.status_code == 200, answer.text
    return world


@pytest.fixture(autouse=True)
def _in_english(client) -> None:  # type: ignore[no-untyped-def]
    """CKAN's messages are asserted as CKAN writes them, in English (the platform's default is Chinese)."""
    client.headers["Accept-Language"] = "en"


def _get(client, action: str, prefix: str = ACTION, **params: Any):  # type: ignore[no-untyped-def]
    """A GET as CKAN clients send one: lists and objects as JSON text in the query string."""
    query = {key.replace("__", "."): v if isinstance(v, str) else json.dumps(v) for key, v in params.items()}
    return client.get(prefix + action, params=query)


def _post(client, action: str, prefix: str = ACTION, **params: Any):  # type: ignore[no-untyped-def]
    return client.post(prefix + action, json={key.replace("__", "."): v for key, v in params.items()})


def _result(response) -> Any:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["success"] is True and body["help"].endswith(
        "/api/3/action/help_show?name=" + _name(response)
    )
    return body["result"]


def _error(response, status: int, error_type: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False and body["help"].endswith("help_show?name=" + _name(response))
    assert body["error"]["__type"] == error_type and body["error"]["message"]
    return dict(body["error"])


def _name(response) -> str:  # type: ignore[no-untyped-def]
    return str(response.request.url.path.rsplit("/", 1)[-1])


# -- packages, organizations, resources ----------------------------------------------------------------------


def test_packages_are_the_open_resources_with_ckan_keys(client, database) -> None:  # type: ignore[no-untyped-def]
    _open_data(client, database)
    assert _result(_get(client, "package_list")) == [ELDERLY, POPULATION]
    assert _result(_get(client, "package_list", limit="1", offset="1")) == [POPULATION]
    package = _result(_get(client, "package_show", id=POPULATION))
    assert {
        "id", "name", "title", "notes", "organization", "tags", "metadata_created", "metadata_modified",
        "license_id", "resources", "num_resources", "num_tags", "state", "type", "private", "extras",
    } <= package.keys()  # fmt: skip
    assert (package["id"], package["name"], package["title"]) == (POPULATION, POPULATION, "各区常住人口")
    assert package["notes"] == "各区县年度常住人口与老年人口占比。"
    assert {key: package["organization"][key] for key in ("id", "name", "title")} == {
        "id": "stats",
        "name": "stats",
        "title": "stats",
    }
    assert [tag["name"] for tag in package["tags"]] == ["人口", "老龄化"] and package["num_tags"] == 2
    assert (package["state"], package["type"], package["private"]) == ("active", "dataset", False)
    assert package["license_id"] == "notspecified"
    datetime.fromisoformat(package["metadata_created"])
    datetime.fromisoformat(package["metadata_modified"])
    extras = {extra["key"]: extra["value"] for extra in package["extras"]}
    assert json.loads(extras["classification"]) == ["人口", "常住人口", "区县"]
    assert (extras["update_cycle"], extras["sharing_class"]) == ("yearly", "conditional")
    assert package["num_resources"] == 1
    download = package["resources"][0]
    assert (download["id"], download["package_id"], download["format"]) == (DOWNLOAD, POPULATION, "CSV")
    assert download["url"].endswith("/data/stats-population.csv") and download["datastore_active"] is True
    served = client.get(urlsplit(download["url"]).path)
    assert served.status_code == 200 and "滨江区" in served.content.decode("utf-8-sig")
    assert _result(_get(client, "package_show", id=ELDERLY))["license_id"] == "CC-BY-4.0"
    for invisible in ("stats-income", "stats-survey", "stats-draft", "no-such-code"):
        error = _error(_get(client, "package_show", id=invisible), 404, "Not Found Error")
        assert error["message"].startswith("Not found: ")


def test_organizations_are_the_departments_publishing_open_data(client, database) -> None:  # type: ignore[no-untyped-def]
    _open_data(client, database)
    assert _result(_get(client, "organization_list")) == ["civil", "stats"]  # health publishes nothing open
    everything = _result(_get(client, "organization_list", all_fields="true", sort="name desc"))
    assert [(o["name"], o["title"], o["package_count"]) for o in everything] == [
        ("stats", "stats", 1),
        ("civil", "civil", 1),
    ]
    stats = _result(_get(client, "organization_show", id="stats"))
    assert (stats["name"], stats["package_count"]) == ("stats", 1) and "packages" not in stats
    with_datasets = _result(_post(client, "organization_show", id="civil", include_datasets=True))
    assert [package["name"] for package in with_datasets["packages"]] == [ELDERLY]
    for missing in ("health", "nobody"):
        _error(_get(client, "organization_show", id=missing), 404, "Not Found Error")
    download = _result(_get(client, "resource_show", id=DOWNLOAD))
    assert download == _result(_get(client, "package_show", id=POPULATION))["resources"][0]
    for missing in ("stats-income.csv", "stats-draft.csv", POPULATION, "nothing.csv"):
        _error(_get(client, "resource_show", id=missing), 404, "Not Found Error")


# -- package_search ------------------------------------------------------------------------------------------


def _names(result: dict[str, Any]) -> list[str]:
    return [package["name"] for package in result["results"]]


def test_package_search_by_words_filters_order_pages_and_facets(client, database) -> None:  # type: ignore[no-untyped-def]
    _open_data(client, database)
    everything = _result(_get(client, "package_search"))
    assert everything["count"] == 2 and sorted(_names(everything)) == [ELDERLY, POPULATION]
    assert _names(_result(_get(client, "package_search", q="养老"))) == [ELDERLY]
    assert _result(_get(client, "package_search", q="人口"))["count"] == 2
    assert _names(_result(_get(client, "package_search", q="tags:老龄化"))) == [POPULATION]
    by_fq = {
        "organization:civil": [ELDERLY],
        "-organization:civil": [POPULATION],
        "+tags:养老": [ELDERLY],
        "tags:人口 organization:stats": [POPULATION],
        "license_id:CC-BY-4.0": [ELDERLY],
        "organization:nobody": [],
        "*:*": [ELDERLY, POPULATION],
    }
    for fq, names in by_fq.items():
        assert sorted(_names(_result(_get(client, "package_search", fq=fq)))) == names, fq
    assert _names(_result(_post(client, "package_search", fq_list=["tags:人口", "name:civil-elderly"]))) == [
        ELDERLY
    ]

    assert _names(_result(_get(client, "package_search", sort="name desc"))) == [POPULATION, ELDERLY]
    newest = _names(_result(_get(client, "package_search", sort="metadata_modified desc")))
    assert newest == [ELDERLY, POPULATION]  # the civil resource was published last
    assert _names(_result(_get(client, "package_search", sort="metadata_modified asc"))) == newest[::-1]
    pages = [
        _result(_get(client, "package_search", sort="name asc", rows="1", start=str(n))) for n in (0, 1, 2)
    ]
    assert [(page["count"], _names(page)) for page in pages] == [(2, [ELDERLY]), (2, [POPULATION]), (2, [])]
    assert _result(_get(client, "package_search", rows="5000"))["count"] == 2  # rows above 1000 are 1000

    faceted = _result(
        _get(client, "package_search", facet__field=["organization", "tags", "license_id", "res_format"])
    )
    facets = faceted["search_facets"]
    assert facets["organization"]["title"] == "organization"
    assert sorted((i["name"], i["display_name"], i["count"]) for i in facets["organization"]["items"]) == [
        ("civil", "civil", 1),
        ("stats", "stats", 1),
    ]
    assert facets["tags"]["items"][0] == {"name": "人口", "display_name": "人口", "count": 2}
    assert {item["name"]: item["count"] for item in facets["tags"]["items"]} == {
        "人口": 2,
        "老龄化": 1,
        "养老": 1,
    }
    assert {i["name"]: i["count"] for i in facets["license_id"]["items"]} == {
        "CC-BY-4.0": 1,
        "notspecified": 1,
    }
    assert facets["res_format"]["items"] == [{"name": "CSV", "display_name": "CSV", "count": 2}]
    assert faceted["facets"]["tags"] == {"人口": 2, "老龄化": 1, "养老": 1}
    narrowed = _result(
        _post(client, "package_search", q="养老", facet__field=["tags"], facet__limit=1, rows=0)
    )
    assert narrowed["results"] == [] and narrowed["search_facets"]["tags"]["items"] == [
        {"name": "人口", "display_name": "人口", "count": 1}
    ]


def test_package_search_refuses_what_it_cannot_read(client, database) -> None:  # type: ignore[no-untyped-def]
    _open_data(client, database)
    refused = {
        "sort": {"sort": "popularity desc"},
        "fq": {"fq": "colour:red"},
        "facet.field": {"facet__field": ["colour"]},
        "rows": {"rows": "-1"},
        "start": {"start": "first"},
    }
    for parameter, params in refused.items():
        error = _error(_get(client, "package_search", **params), 409, "Validation Error")
        assert error[parameter] == [error["message"]], parameter


# -- datastore_search ----------------------------------------------------------------------------------------


def _search(client, **params: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return dict(_result(_post(client, "datastore_search", resource_id=DOWNLOAD, **params)))


def _districts(result: dict[str, Any]) -> list[str]:
    return [record["district"] for record in result["records"]]


def test_datastore_search_returns_typed_fields_records_and_links(client, database) -> None:  # type: ignore[no-untyped-def]
    _open_data(client, database)
    result = _result(_get(client, "datastore_search", resource_id=DOWNLOAD))
    assert [(field["id"], field["type"]) for field in result["fields"]] == [
        ("_id", "int"),
        ("district", "text"),
        ("year", "int"),
        ("population", "int"),
        ("elderly_share", "numeric"),
        ("surveyed_on", "date"),
    ]
    assert result["records"][1] == {
        "_id": 2,
        "district": "滨江区",
        "year": 2025,
        "population": 541000,
        "elderly_share": 0.12,
        "surveyed_on": "2025-11-01",
    }
    assert (result["resource_id"], result["total"], result["limit"], result["offset"]) == (
        DOWNLOAD,
        3,
        100,
        0,
    )
    assert result["_links"]["start"] == f"/api/3/action/datastore_search?resource_id={DOWNLOAD}"
    first = _search(client, limit=2)
    assert [record["_id"] for record in first["records"]] == [1, 2] and first["total"] == 3
    following = client.get(first["_links"]["next"]).json()["result"]
    assert [record["_id"] for record in following["records"]] == [3] and following["offset"] == 2
    assert "total" not in _search(client, include_total=False)
    assert _search(client, limit=100_000)["limit"] == 32_000


def test_datastore_search_filters_text_fields_and_sort_in_sql(client, database) -> None:  # type: ignore[no-untyped-def]
    _open_data(client, database)
    filtered = {
        json.dumps({"district": "滨江区"}): ["滨江区"],
        json.dumps({"district": ["滨江区", "上城区", "钱塘区"]}): ["滨江区", "上城区"],
        json.dumps({"year": "2025"}): ["西湖区", "滨江区", "上城区"],  # typed: the text 2025 is the number
        json.dumps({"population": 541000}): ["滨江区"],
        json.dumps({"population": {"gte": 1187000}}): ["西湖区", "上城区"],
        json.dumps({"elderly_share": {"gt": 0.15, "lt": 0.24}}): ["西湖区"],
        json.dumps({"surveyed_on": {"gt": "2025-11-01"}}): ["上城区"],
        json.dumps({"district": "滨江区", "year": 2024}): [],
    }
    for filters, districts in filtered.items():
        result = _result(_get(client, "datastore_search", resource_id=DOWNLOAD, filters=filters))
        assert (_districts(result), result["total"]) == (districts, len(districts)), filters
    assert _districts(_search(client, q="西湖")) == ["西湖区"]
    assert _districts(_search(client, q="2025-11-02")) == ["上城区"]
    assert _districts(_search(client, q="0.12 滨江")) == ["滨江区"]  # every word, in any field
    assert _districts(_search(client, q={"district": "城"})) == ["上城区"]
    assert _districts(_search(client, q="区", filters={"year": 2025}, limit=1)) == ["西湖区"]

    assert list(_search(client, fields=["population", "district"])["records"][0]) == [
        "population",
        "district",
    ]
    by_text = _result(_get(client, "datastore_search", resource_id=DOWNLOAD, fields="district, _id"))
    assert by_text["records"][2] == {"district": "上城区", "_id": 3}
    assert [field["id"] for field in by_text["fields"]] == ["district", "_id"]

    # Numbers sort as numbers (as text, 541000 would come first), strings by code point.
    assert _districts(_search(client, sort="population desc")) == ["上城区", "西湖区", "滨江区"]
    assert _districts(_search(client, sort="district asc")) == ["上城区", "滨江区", "西湖区"]
    assert _districts(_search(client, sort=["surveyed_on desc", '"population" asc'])) == [
        "上城区",
        "滨江区",
        "西湖区",
    ]
    assert [r["_id"] for r in _search(client, sort="_id desc")["records"]] == [3, 2, 1]
    elderly = {"resource_id": "civil-elderly.csv"}
    going_up = _result(_post(client, "datastore_search", sort="elderly_share asc", **elderly))
    assert _districts(going_up) == ["余杭区", "西湖区", "拱墅区"]  # no value: last going up
    going_down = _result(_post(client, "datastore_search", sort="elderly_share desc", **elderly))
    assert _districts(going_down) == ["拱墅区", "西湖区", "余杭区"]  # and first going down


def test_datastore_search_errors(client, database) -> None:  # type: ignore[no-untyped-def]
    _open_data(client, database)
    refused = {
        "filters": {"filters": {"colour": "red"}},
        "sort": {"sort": "colour asc"},
        "fields": {"fields": ["colour"]},
        "q": {"q": {"colour": "red"}},
        "limit": {"limit": -1},
        "offset": {"offset": 10**20},
    }
    for parameter, params in refused.items():
        error = _error(
            _post(client, "datastore_search", resource_id=DOWNLOAD, **params), 409, "Validation Error"
        )
        assert parameter in error, parameter
    for filters in ({"year": "soon"}, {"year": {"near": 2025}}, {"year": [[2025]]}, "not json", ["year"]):
        response = _get(client, "datastore_search", resource_id=DOWNLOAD, filters=filters)
        assert "filters" in _error(response, 409, "Validation Error"), filters
    assert _error(_post(client, "datastore_search"), 409, "Validation Error")["resource_id"] == [
        "Missing value"
    ]
    for hidden in ("stats-income.csv", "stats-survey.csv", "stats-draft.csv", "nothing.csv", POPULATION):
        _error(_post(client, "datastore_search", resource_id=hidden), 404, "Not Found Error")


# -- the envelope ------------------------------------------------------------------------------------------


def test_get_and_post_at_both_paths_answer_alike_in_ckans_envelope(client, database) -> None:  # type: ignore[no-untyped-def]
    _open_data(client, database)
    by_get = _result(_get(client, "package_show", id=POPULATION))
    assert _result(_post(client, "package_show", id=POPULATION)) == by_get
    assert _result(_post(client, "package_show", prefix="/api/action/", id=POPULATION)) == by_get
    assert _result(_get(client, "package_show", prefix="/api/action/", id=POPULATION)) == by_get
    form = client.post(ACTION + "package_show", data={"id": POPULATION})
    assert _result(form) == by_get
    _error(_get(client, "package_show", prefix="/api/action/", id="nothing"), 404, "Not Found Error")
    assert _error(_post(client, "package_show"), 409, "Validation Error")["id"] == ["Missing value"]

    unknown = client.get(ACTION + "no_such_action")
    assert (unknown.status_code, unknown.json()) == (
        400,
        "Bad request: Action name not known: no_such_action",
    )
    for body in (b"{not json", b"[1, 2]"):
        refused = client.post(ACTION + "package_list", content=body)
        assert refused.status_code == 400 and refused.json().startswith("Bad request: JSON Error: ")
    denied = _error(_post(client, "package_create", name="mine"), 403, "Authorization Error")
    assert denied["message"].startswith("Access denied: ")
    _error(client.put(ACTION + "package_list"), 405, "Method Not Allowed")
    assert "filters" in _result(_get(client, "help_show", name="datastore_search"))
    _error(_get(client, "help_show", name="package_create"), 404, "Not Found Error")


def test_package_search_pages_by_time_as_the_database_orders(client, database) -> None:  # type: ignore[no-untyped-def]
    """An order by time is cut from the matches in memory; it must page as the SQL order would, ties too."""
    world = build_exchange(client, database)
    for n in range(7):
        published(client, world, f"stats-t{n}", name=f"人口统计{n}")
    moments = [datetime(2026, 1, 1 + n % 3, tzinfo=UTC) for n in range(7)]  # three of a kind: ties
    with database.unit_of_work() as session:
        for n, moment in enumerate(moments):
            changed = {"modified_at": moment, "created_at": moments[-1 - n]}
            session.execute(update(Resource).where(Resource.code == f"stats-t{n}").values(**changed))
    with database.reading() as session:
        rows = session.execute(
            select(Resource.id, Resource.code, Resource.modified_at, Resource.created_at)
        ).all()

    def ordered(key: Any) -> list[str]:
        return [row.code for row in sorted(rows, key=key)]

    def moment_of(value: datetime) -> float:
        return value.timestamp()

    expectations = {
        None: ordered(lambda r: (-moment_of(r.modified_at), -r.id)),  # score desc, metadata_modified desc
        "metadata_modified asc": ordered(lambda r: (moment_of(r.modified_at), -r.id)),
        "metadata_created desc": ordered(
            lambda r: (-moment_of(r.created_at), -moment_of(r.modified_at), -r.id)
        ),
    }
    for sort, expected in expectations.items():
        params = {"q": "人口", "rows": "3"} | ({"sort": sort} if sort else {})
        pages = [_names(_result(_get(client, "package_search", start=str(n), **params))) for n in (0, 3, 6)]
        assert [name for page in pages for name in page] == expected, sort
    by_name = _names(_result(_get(client, "package_search", q="人口", sort="name asc", rows="7")))  # in SQL
    assert by_name == sorted(expectations[None])
