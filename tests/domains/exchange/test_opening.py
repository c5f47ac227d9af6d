"""De-identification before opening (both databases): the owner's open rules are checked against the data
items (422s); every public path — the portal's preview, the CSV and JSON downloads, CKAN's datastore_search,
the open query API — serves the rows suppressed and generalised, and never lets a suppressed item or a
generalised item's raw values out (filters, searches, sorts); aggregates leave out groups smaller than the
minimum and say how many; every public read is counted by day and channel; anonymous use is rate limited per
client address."""

from __future__ import annotations

import csv
import io
import json
import threading
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select

from cityhub.domains.exchange.models import OpenDownload, Resource
from cityhub.domains.exchange.service import opening
from cityhub.kernel import ratelimit
from cityhub.kernel.models import AuditRecord
from tests.domains.exchange.world import API, Exchange, build_exchange, loaded, registered

CODE = "civil-elderly-visits"
ITEMS = [
    {"name": "name", "title": "姓名", "type": "string", "required": True},
    {"name": "id_number", "title": "身份证号", "type": "string", "required": True},
    {"name": "district", "title": "区县", "type": "string", "required": True},
    {"name": "age", "title": "年龄", "type": "integer"},
    {"name": "score", "title": "评分", "type": "number"},
    {"name": "born_on", "title": "出生日期", "type": "date"},
    {"name": "visited_at", "title": "走访时间", "type": "datetime"},
    {"name": "phone", "title": "电话", "type": "string"},
    {"name": "insured", "title": "参保", "type": "boolean"},
]
# name, district, age, score, born_on, visited_at, phone, insured; id numbers are made from row numbers.
PEOPLE = [
    ("张三丰", "西湖区", 37, 72.5, "1988-03-04", "2025-11-01T08:30:00", "13800001111", True),
    ("李四", "西湖区", 31, 80.25, "1994-06-01", "2025-11-02T09:00:00", "13900002222", False),
    ("王小明", "西湖区", 45, 66.0, "1980-01-20", "2025-10-15T10:00:00", "13800003333", True),
    ("赵六", "西湖区", 52, 91.0, "1973-12-31", "2025-10-16T11:15:00", "13700004444", True),
    ("钱七", "西湖区", 38, 74.0, "1987-05-05", "2025-11-03T14:00:00", "13800005555", False),
    ("孙八", "西湖区", 29, 58.5, "1996-02-29", "2025-09-30T16:45:00", "13900006666", True),
    ("周九", "滨江区", 33, 77.0, "1992-07-07", "2025-11-04T08:00:00", "13800007777", True),
    ("吴十", "滨江区", 41, 69.5, "1984-08-08", "2025-11-05T08:00:00", "13600008888", False),
    ("郑十一", "滨江区", 47, 88.0, "1978-09-09", "2025-10-01T08:00:00", "13800009999", True),
    ("冯十二", "滨江区", 36, 71.0, "1989-10-10", "2025-11-06T08:00:00", "13900001010", True),
    ("陈十三", "上城区", 60, 95.5, "1965-11-11", "2025-11-07T08:00:00", "13800001212", False),
    ("褚十四", "上城区", 62, 99.0, "1963-12-12", "2025-11-08T08:00:00", "", True),
]
SECRET = "ID-3301"  # every id number starts so; no public output may hold it


def _id_number(row: int) -> str:
    return f"{SECRET}{row:012d}"


def _csv() -> str:
    lines = [",".join(item["name"] for item in ITEMS)]
    for row, (name, district, age, score, born, visited, phone, insured) in enumerate(PEOPLE, 1):
        values = [name, _id_number(row), district, age, score, born, visited, phone, str(insured).lower()]
        lines.append(",".join(str(value) for value in values))
    return "\n".join(lines) + "\n"


RULES: dict[str, Any] = {
    "suppress": ["id_number"],
    "generalise": {
        "name": {"method": "mask", "keep": 1},
        "age": {"method": "bucket", "width": 10},
        "score": {"method": "bucket", "width": 2.5},
        "born_on": {"method": "truncate", "to": "year"},
        "visited_at": {"method": "truncate", "to": "month"},
        "phone": {"method": "prefix", "keep": 3},
    },
}
PUBLIC_NAMES = ["name", "district", "age", "score", "born_on", "visited_at", "phone", "insured"]


def _public(row: int) -> dict[str, Any]:
    """What the public gets of a row under RULES, worked out by hand."""
    name, district, age, score, born, visited, phone, insured = PEOPLE[row - 1]
    low = int(score // 2.5 * 2.5 * 100) / 100
    score_range = f"{low:g}-{low + 2.5:g}"
    return {
        "name": name[0] + "*" * (len(name) - 1),
        "district": district,
        "age": f"{age // 10 * 10}-{age // 10 * 10 + 9}",
        "score": score_range,
        "born_on": born[:4],
        "visited_at": visited[:7],
        "phone": phone[:3] if phone else None,
        "insured": insured,
    }


def _opened(client, database, rules: dict[str, Any] | None = RULES, **overrides: Any) -> Exchange:  # type: ignore[no-untyped-def]
    """The civil affairs bureau's visits to elderly people, loaded, published open, with ``rules``."""
    world = build_exchange(client, database)
    registered(client, world, CODE, name="高龄老人走访", data_items=ITEMS, **overrides)
    assert loaded(client, world, CODE, _csv())["valid"] is True
    published = client.post(
        f"{API}/resources/{CODE}/status", json={"status": "published"}, headers=world.owner
    )
    assert published.status_code == 200, published.text
    if rules is not None:
        answer = client.put(f"{API}/resources/{CODE}/open-rules", json=rules, headers=world.owner)
        assert answer.status_code == 200, answer.text
    return world


def _datastore(client, **params: Any):  # type: ignore[no-untyped-def]
    query = {key: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for key, v in params.items()}
    return client.get("/api/3/action/datastore_search", params={"resource_id": f"{CODE}.csv", **query})


def _cell(value: Any) -> str:
    """A JSON value as the CSV downloads write it."""
    if value is None:
        return ""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _csv_rows(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


# -- the rules -----------------------------------------------------------------------------------------------


REFUSED_RULES: list[tuple[dict[str, Any], str | None]] = [
    ({"suppress": ["nobody"]}, "suppress"),
    ({"generalise": {"nobody": {"method": "mask", "keep": 1}}}, "generalise"),
    ({"generalise": {"age": {"method": "truncate", "to": "year"}}}, "generalise"),  # a number
    ({"generalise": {"born_on": {"method": "bucket", "width": 10}}}, "generalise"),  # a date
    ({"generalise": {"age": {"method": "bucket", "width": 2.5}}}, "generalise"),  # whole numbers
    ({"generalise": {"district": {"method": "bucket", "width": 10}}}, "generalise"),  # text
    ({"generalise": {"born_on": {"method": "mask", "keep": 1}}}, "generalise"),
    ({"generalise": {"insured": {"method": "prefix", "keep": 1}}}, "generalise"),  # a yes/no
    ({"suppress": [item["name"] for item in ITEMS]}, "suppress"),  # nothing left to open
    ({"generalise": {"age": {"method": "round"}}}, None),
    ({"generalise": {"age": {"method": "bucket", "width": 0}}}, None),
    ({"generalise": {"visited_at": {"method": "truncate", "to": "day"}}}, None),
    ({"suppress": ["age"], "generalise": {"age": {"method": "bucket", "width": 5}}}, None),
    ({"min_group": 1}, None),
    ({"suppres": ["age"]}, None),
]  # the rules, and the field a 422 of ours names (None: the schema's 422)


def test_rules_that_do_not_fit_the_data_items_are_422(client, database) -> None:  # type: ignore[no-untyped-def]
    world = _opened(client, database, rules=None)
    for rules, where in REFUSED_RULES:
        answer = client.put(f"{API}/resources/{CODE}/open-rules", json=rules, headers=world.owner)
        assert answer.status_code == 422, (rules, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert where is None or answer.json()["field"] == where, (rules, answer.text)
    entry = client.get(f"{API}/resources/{CODE}", headers=world.owner).json()
    assert entry["open_rules"] == {"suppress": [], "generalise": {}, "min_group": None}


def test_the_owner_or_the_operator_sets_the_rules_audited_and_the_public_entry_hides_suppressed_items(  # type: ignore[no-untyped-def]
    client, database
) -> None:
    world = _opened(client, database, rules=None)
    for refused in (world.consumer, world.resident):
        assert (
            client.put(f"{API}/resources/{CODE}/open-rules", json=RULES, headers=refused).status_code == 403
        )
    assert client.put(f"{API}/resources/{CODE}/open-rules", json=RULES).status_code == 401
    answer = client.put(
        f"{API}/resources/{CODE}/open-rules", json={**RULES, "min_group": 3}, headers=world.operator
    )
    assert answer.status_code == 200, answer.text
    rules = answer.json()["open_rules"]
    assert rules["suppress"] == ["id_number"] and rules["min_group"] == 3
    assert rules["generalise"]["age"] == {"method": "bucket", "width": 10}
    with database.reading() as session:
        records = session.scalars(
            select(AuditRecord).where(AuditRecord.action == "exchange.resource.open_rules")
        ).all()
        assert [record.object_id for record in records] == [CODE]
        assert records[0].details["suppress"] == ["id_number"] and records[0].details["min_group"] == 3
    # Departments see every item (they may ask for it through a grant); the public does not.
    seen = client.get(f"{API}/resources/{CODE}", headers=world.consumer).json()
    assert "id_number" in [item["name"] for item in seen["data_items"]]
    for public in (
        client.get(f"{API}/resources/{CODE}").json(),
        client.get(f"{API}/resources/{CODE}", headers=world.resident).json(),
    ):
        assert [item["name"] for item in public["data_items"]] == PUBLIC_NAMES
        assert public["open_rules"]["suppress"] == [] and public["open_rules"]["min_group"] == 3
    listed = client.get(f"{API}/resources").json()["items"]
    assert "id_number" not in json.dumps(listed)


# -- every public path ---------------------------------------------------------------------------------------


def test_the_preview_page_shows_public_rows_and_items(client, database) -> None:  # type: ignore[no-untyped-def]
    _opened(client, database)
    page = client.get(f"/data/{CODE}")
    assert page.status_code == 200, page.text
    html = page.text
    assert "id_number" not in html and SECRET not in html and "身份证号" not in html
    for row in range(1, len(PEOPLE) + 1):
        public = _public(row)
        assert public["name"] in html and public["age"] in html
    assert "张三丰" not in html and "1988-03-04" not in html and "13800001111" not in html
    assert "2025-11-01T08:30:00" not in html and "2025-11" in html
    assert "72.5-75" in html and "80-82.5" in html


def test_downloads_serve_the_public_rows(client, database) -> None:  # type: ignore[no-untyped-def]
    _opened(client, database)
    expected = [_public(row) for row in range(1, len(PEOPLE) + 1)]
    as_csv = client.get(f"/data/{CODE}.csv")
    assert as_csv.status_code == 200 and SECRET not in as_csv.text
    header, *lines = _csv_rows(as_csv.text)
    assert header == PUBLIC_NAMES
    assert lines == [[_cell(row[name]) for name in PUBLIC_NAMES] for row in expected]
    as_json = client.get(f"/data/{CODE}.json")
    assert as_json.status_code == 200 and SECRET not in as_json.text
    assert as_json.json() == expected


def test_ckan_datastore_search_serves_public_fields_and_guards_filters_searches_and_sorts(
    client, database
) -> None:  # type: ignore[no-untyped-def]
    client.headers["Accept-Language"] = "en"
    _opened(client, database)
    result = _datastore(client).json()["result"]
    assert SECRET not in json.dumps(result, ensure_ascii=False)
    assert [(field["id"], field["type"]) for field in result["fields"]] == [
        ("_id", "int"), ("name", "text"), ("district", "text"), ("age", "text"), ("score", "text"),
        ("born_on", "text"), ("visited_at", "text"), ("phone", "text"), ("insured", "bool"),
    ]  # fmt: skip
    assert result["records"] == [{"_id": row, **_public(row)} for row in range(1, len(PEOPLE) + 1)]
    assert result["total"] == len(PEOPLE)
    # A suppressed item is no field; a generalised one cannot be filtered or searched on.
    for params, parameter in (
        ({"filters": {"id_number": _id_number(1)}}, "filters"),
        ({"filters": {"age": 37}}, "filters"),
        ({"filters": {"name": {"in": ["张三丰"]}}}, "filters"),
        ({"q": {"id_number": "3301"}}, "q"),
        ({"q": {"phone": "138"}}, "q"),
        ({"fields": "name,id_number"}, "fields"),
        ({"sort": "id_number desc"}, "sort"),
    ):
        refused = _datastore(client, **params)
        assert refused.status_code == 409, (params, refused.text)
        error = refused.json()["error"]
        assert error["__type"] == "Validation Error" and parameter in error, error
    # Words are looked for in the items shown as they are: never in a suppressed or generalised one.
    assert _datastore(client, q="3301").json()["result"]["total"] == 0
    assert _datastore(client, q="张三丰").json()["result"]["total"] == 0
    assert _datastore(client, q="1988").json()["result"]["total"] == 0
    assert _datastore(client, q="滨江").json()["result"]["total"] == 4
    assert (
        _datastore(client, filters={"district": "上城区", "insured": [True]}).json()["result"]["total"] == 1
    )
    # A generalised item sorts by its public value, then by row: nothing of the raw order within a range.
    by_age = _datastore(client, sort="age desc", fields="_id,age").json()["result"]["records"]
    assert [record["_id"] for record in by_age] == [11, 12, 4, 3, 8, 9, 1, 2, 5, 7, 10, 6]
    by_name = _datastore(client, sort="name", fields="name").json()["result"]["records"]
    assert [record["name"] for record in by_name][:3] == ["冯**", "吴*", "周*"]


def test_the_open_query_api_pages_and_filters_public_rows(client, database) -> None:  # type: ignore[no-untyped-def]
    world = _opened(client, database)
    rows = f"{API}/open/{CODE}/rows"
    first = client.get(rows, params={"limit": 5})
    assert first.status_code == 200, first.text
    page = first.json()
    assert page["total"] == len(PEOPLE) and page["limit"] == 5 and page["offset"] == 0
    assert [field["name"] for field in page["fields"]] == PUBLIC_NAMES
    assert page["fields"][2] == {
        "name": "age",
        "title": "年龄",
        "type": "string",
        "generalised": {"method": "bucket", "width": 10},
    }
    assert page["items"] == [_public(row) for row in range(1, 6)]
    last = client.get(rows, params={"limit": 5, "offset": 10}).json()
    assert last["items"] == [_public(11), _public(12)] and last["total"] == len(PEOPLE)
    west = client.get(rows, params={"filter": "district:西湖区"}).json()
    assert west["total"] == 6 and west["items"][0]["name"] == "张**"
    either = client.get(
        rows,
        params=[("filter", "district:上城区"), ("filter", "district:滨江区"), ("filter", "insured:false")],
    ).json()
    assert either["total"] == 2 and [item["name"] for item in either["items"]] == ["吴*", "陈**"]
    for bad in ("id_number:x", "age:37", "nobody:1", "district", "insured:perhaps"):
        refused = client.get(rows, params={"filter": bad})
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
    # Only resources open to everyone: closed, conditional, drafts and unknown codes are 404.
    registered(client, world, "civil-closed", name="关闭", data_items=ITEMS, open_class="closed")
    loaded(client, world, "civil-closed", _csv())
    client.post(f"{API}/resources/civil-closed/status", json={"status": "published"}, headers=world.owner)
    for code in ("civil-closed", "nothing-here"):
        assert client.get(f"{API}/open/{code}/rows").status_code == 404
        assert client.get(f"{API}/open/{code}/aggregate", params={"group_by": "district"}).status_code == 404


def test_aggregates_leave_out_groups_below_the_minimum_and_count_them(client, database) -> None:  # type: ignore[no-untyped-def]
    world = _opened(client, database)
    aggregate = f"{API}/open/{CODE}/aggregate"

    def groups(**params: Any) -> dict[str, Any]:
        answer = client.get(aggregate, params=params)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    by_district = groups(group_by="district")  # the platform's default minimum: 5
    assert by_district["min_group"] == 5 and by_district["measure"] == "count"
    assert by_district["groups"] == [{"key": {"district": "西湖区"}, "count": 6, "value": 6}]
    assert (by_district["suppressed_groups"], by_district["suppressed_rows"]) == (2, 6)
    by_age = groups(group_by="age")
    assert by_age["groups"] == [{"key": {"age": "30-39"}, "count": 5, "value": 5}]
    assert (by_age["suppressed_groups"], by_age["suppressed_rows"]) == (4, 7)
    # The resource's own minimum.
    answer = client.put(
        f"{API}/resources/{CODE}/open-rules", json={**RULES, "min_group": 2}, headers=world.owner
    )
    assert answer.status_code == 200, answer.text
    assert groups(group_by="district")["suppressed_groups"] == 0
    client.put(f"{API}/resources/{CODE}/open-rules", json={**RULES, "min_group": 3}, headers=world.owner)
    two = groups(group_by="district,born_on")
    assert two["groups"] == [] and (two["suppressed_groups"], two["suppressed_rows"]) == (12, 12)
    months = groups(group_by="district,visited_at")
    assert months["groups"] == [
        {"key": {"district": "滨江区", "visited_at": "2025-11"}, "count": 3, "value": 3},
        {"key": {"district": "西湖区", "visited_at": "2025-11"}, "count": 3, "value": 3},
    ]
    assert (months["suppressed_groups"], months["suppressed_rows"]) == (4, 6)
    insured = groups(group_by="insured,district")
    assert [(g["key"], g["count"]) for g in insured["groups"]] == [
        ({"insured": True, "district": "滨江区"}, 3),
        ({"insured": True, "district": "西湖区"}, 4),
    ]
    names = groups(group_by="name")  # masked: 张**, 李*, ... one or two stars
    assert [(g["key"]["name"], g["count"]) for g in names["groups"]] == []
    phones = groups(group_by="phone")
    assert [(g["key"]["phone"], g["count"]) for g in phones["groups"]] == [("138", 6), ("139", 3)]
    assert (phones["suppressed_groups"], phones["suppressed_rows"]) == (3, 3)  # 136, 137 and the empty one
    by_district = groups(group_by="district", measure="count")
    assert [(g["key"]["district"], g["count"]) for g in by_district["groups"]] == [
        ("滨江区", 4),
        ("西湖区", 6),
    ]
    assert (by_district["suppressed_groups"], by_district["suppressed_rows"]) == (1, 2)
    scored = groups(group_by="age")
    assert [(g["key"]["age"], g["count"]) for g in scored["groups"]] == [("30-39", 5), ("40-49", 3)]
    for bad in (
        {"group_by": "id_number"},
        {"group_by": "nobody"},
        {"group_by": ""},
        {"group_by": "district,age,born_on,phone"},
        {"group_by": "district", "measure": "sum:age"},  # generalised
        {"group_by": "district", "measure": "sum:district"},  # not a number
        {"group_by": "district", "measure": "sum:id_number"},
        {"group_by": "district", "measure": "max:score"},
        {"group_by": "district", "measure": "sum"},
    ):
        refused = client.get(aggregate, params=bad)
        assert refused.status_code == 422, (bad, refused.text)


def test_aggregates_sum_and_average_public_numbers(client, database) -> None:  # type: ignore[no-untyped-def]
    rules = {
        "suppress": ["id_number"],
        "generalise": {"age": {"method": "bucket", "width": 10}},
        "min_group": 2,
    }
    _opened(client, database, rules=rules)
    answer = client.get(
        f"{API}/open/{CODE}/aggregate", params={"group_by": "district", "measure": "sum:score"}
    )
    assert answer.status_code == 200, answer.text
    sums = {g["key"]["district"]: g["value"] for g in answer.json()["groups"]}
    assert sums == pytest.approx({"上城区": 194.5, "滨江区": 305.5, "西湖区": 442.25})
    answer = client.get(f"{API}/open/{CODE}/aggregate", params={"group_by": "age", "measure": "avg:score"})
    averages = {g["key"]["age"]: (g["count"], g["value"]) for g in answer.json()["groups"]}
    assert averages == {
        "30-39": (5, pytest.approx((72.5 + 80.25 + 74.0 + 77.0 + 71.0) / 5)),
        "40-49": (3, pytest.approx((66.0 + 69.5 + 88.0) / 3)),
        "60-69": (2, pytest.approx((95.5 + 99.0) / 2)),
    }
    assert answer.json()["suppressed_groups"] == 2 and answer.json()["suppressed_rows"] == 2


# -- a suppressed item never appears anywhere ----------------------------------------------------------------


def _public_outputs(client, suppressed: list[str]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Every public path's answer as text (the refusals too, for paths naming a suppressed item)."""
    outputs = {
        "entry": client.get(f"{API}/resources/{CODE}").text,
        "listing": client.get(f"{API}/resources").text,
        "page": client.get(f"/data/{CODE}").text,
        "csv": client.get(f"/data/{CODE}.csv").text,
        "json": client.get(f"/data/{CODE}.json").text,
        "ckan": _datastore(client).text,
        "rows": client.get(f"{API}/open/{CODE}/rows").text,
        "aggregate": client.get(f"{API}/open/{CODE}/aggregate", params={"group_by": "district"}).text,
    }
    for name in suppressed:
        for path, answer in (
            ("ckan-filter", _datastore(client, filters={name: "x"})),
            ("ckan-sort", _datastore(client, sort=name)),
            ("ckan-q", _datastore(client, q={name: "x"})),
            ("rows-filter", client.get(f"{API}/open/{CODE}/rows", params={"filter": f"{name}:x"})),
            ("group-by", client.get(f"{API}/open/{CODE}/aggregate", params={"group_by": name})),
        ):
            assert answer.status_code in (409, 422), (path, name, answer.text)
    return outputs


def _structured_names(outputs: dict[str, str]) -> set[str]:
    """The item names the structured answers hold."""
    names = set(_csv_rows(outputs["csv"])[0])
    names |= {key for row in json.loads(outputs["json"]) for key in row}
    result = json.loads(outputs["ckan"])["result"]
    names |= {field["id"] for field in result["fields"]} | {key for row in result["records"] for key in row}
    rows = json.loads(outputs["rows"])
    names |= {field["name"] for field in rows["fields"]} | {key for row in rows["items"] for key in row}
    names |= {item["name"] for item in json.loads(outputs["entry"])["data_items"]}
    return names


def test_the_suppressed_id_number_appears_on_no_public_path(client, database) -> None:  # type: ignore[no-untyped-def]
    _opened(client, database)
    for path, text in _public_outputs(client, ["id_number"]).items():
        assert SECRET not in text, path
        assert "id_number" not in text, path


@hypothesis_settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_no_suppressed_item_appears_on_any_public_path(client, database, data) -> None:  # type: ignore[no-untyped-def]
    ratelimit.reset(client.app.state.settings.rate_limits.storage_uri)  # many reads per example
    with database.reading() as session:
        made = session.scalar(select(Resource.id).where(Resource.code == CODE)) is not None
    if not made:  # one world per test (the fixtures are not renewed per example); the rules change
        _opened(client, database, rules=None)
    names = [item["name"] for item in ITEMS]
    suppressed = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names) - 1, unique=True))
    with database.unit_of_work() as session:  # the owner's rules, as the API stores them
        resource = session.scalar(select(Resource).where(Resource.code == CODE))
        resource.open_rules = {"suppress": suppressed, "generalise": {}, "min_group": None}
    outputs = _public_outputs(client, suppressed)
    shown = _structured_names(outputs)
    assert not shown & set(suppressed)
    assert shown - {"_id"} == set(names) - set(suppressed)
    titles = {item["name"]: item["title"] for item in ITEMS}
    for name in suppressed:
        assert f"<code>{name}</code>" not in outputs["page"] and f">{titles[name]}<" not in outputs["page"]
    if "id_number" in suppressed:
        assert not any(SECRET in text for text in outputs.values())


# -- counting and limits -------------------------------------------------------------------------------------


def _counts(database) -> dict[str, tuple[int, int]]:  # type: ignore[no-untyped-def]
    with database.reading() as session:
        return {
            row.channel: (row.reads, row.rows)
            for row in session.scalars(select(OpenDownload))
            if row.day == datetime.now(UTC).date()
        }


def test_every_public_read_is_counted_by_day_and_channel(client, database) -> None:  # type: ignore[no-untyped-def]
    _opened(client, database)
    assert _counts(database) == {}
    client.get(f"/data/{CODE}")
    client.get(f"/data/{CODE}.csv")
    client.get(f"/data/{CODE}.csv")
    client.get(f"/data/{CODE}.json")
    client.get(f"{API}/open/{CODE}/rows", params={"limit": 5})
    client.get(f"{API}/open/{CODE}/rows", params={"filter": "district:滨江区"})
    client.get(f"{API}/open/{CODE}/aggregate", params={"group_by": "district"})
    _datastore(client, limit=3)
    assert (
        client.get(f"{API}/open/{CODE}/rows", params={"filter": "age:30"}).status_code == 422
    )  # not counted
    assert _counts(database) == {
        "preview": (1, 12),
        "csv": (2, 24),
        "json": (1, 12),
        "api": (3, 5 + 4 + 1),  # rows of the pages, groups of the aggregate
        "ckan": (1, 3),
    }
    today = datetime.now(UTC).date()
    with database.reading() as session:
        resource_id = session.scalar(select(Resource.id).where(Resource.code == CODE))
        days = opening.downloads_by_day(session, today, today, [resource_id])
        assert [(d.day, d.channel, d.reads, d.rows) for d in days] == [
            (today, "api", 3, 10), (today, "ckan", 1, 3), (today, "csv", 2, 24), (today, "json", 1, 12),
            (today, "preview", 1, 12),
        ]  # fmt: skip
        assert opening.downloads_by_day(session, date(2000, 1, 1), date(2000, 1, 2)) == []


def test_concurrent_reads_lose_no_count(client, database) -> None:  # type: ignore[no-untyped-def]
    _opened(client, database)
    with database.reading() as session:
        resource_id = session.scalar(select(Resource.id).where(Resource.code == CODE))
    start = threading.Barrier(6)

    def read() -> None:
        start.wait()
        for _ in range(5):
            with database.unit_of_work() as session:
                opening.count_read(session, resource_id, "api", 2)

    threads = [threading.Thread(target=read) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _counts(database) == {"api": (30, 60)}


def test_anonymous_use_is_limited_per_client_address(client, database, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _opened(client, database)
    monkeypatch.setattr(client.app.state.settings.rate_limits, "public", "3/minute")
    paths = [f"{API}/open/{CODE}/rows", f"/data/{CODE}.csv", f"{API}/open/{CODE}/aggregate?group_by=district"]
    assert [client.get(path).status_code for path in paths] == [200, 200, 200]
    limited = client.get(f"{API}/open/{CODE}/rows")
    assert limited.status_code == 429
    assert limited.headers["content-type"].startswith("application/problem+json")
    assert limited.json()["type"].endswith("/too-many-requests")
    assert int(limited.headers["Retry-After"]) >= 1
    ckan = _datastore(client)
    assert ckan.status_code == 429 and ckan.json()["success"] is False and "Retry-After" in ckan.headers
    # Another address has its own allowance.
    elsewhere = TestClient(client.app, base_url="http://testserver", client=("203.0.113.7", 50000))
    assert elsewhere.get(f"{API}/open/{CODE}/rows").status_code == 200
    assert _counts(database)["api"][0] == 3  # refused reads are not counted
