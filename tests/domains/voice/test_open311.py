"""The Open311 GeoReport v2 server on both databases: every JSON answer validated against the Open311 JSON
Schemas, the same answers in XML, requests posted by a partner app's API key entering the 12345 workflow,
tokens, the filters and the 90-day rule, paging, notes, and the spec's errors in both formats."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from cityhub.domains.voice.service import tickets as ticket_service
from cityhub.kernel.settings import clear_settings_cache
from tests.domains.voice.hotline import API, Hotline, report
from tests.factories import api_key_for

OPEN311 = "/open311/v2"
SCHEMAS = Path(__file__).resolve().parents[2] / "data" / "open311"
STREETLIGHT = {
    "categories": [
        {"code": "01", "name_zh": "城乡建设", "name_en": "Construction"},
        {
            "code": "01.02",
            "name_zh": "路灯故障",
            "name_en": "Street light out",
            "organization_code": "org-housing",
            "description": "路灯不亮、闪烁或倒伏",
            "attributes": [
                {
                    "code": "pole",
                    "datatype": "string",
                    "description": "灯杆编号",
                    "required": True,
                    "order": 1,
                },
                {
                    "code": "state",
                    "datatype": "singlevaluelist",
                    "description": "现象",
                    "order": 2,
                    "values": [{"key": "dark", "name": "不亮"}, {"key": "blink", "name": "闪烁"}],
                },
                {
                    "code": "hazards",
                    "datatype": "multivaluelist",
                    "description": "附近的危险",
                    "order": 3,
                    "values": [{"key": "wire", "name": "电线外露"}, {"key": "traffic", "name": "车流大"}],
                },
                {"code": "height", "datatype": "number", "description": "灯杆高度（米）", "order": 4},
            ],
        },
    ]
}


def _validator(name: str) -> Draft4Validator:
    resources = [
        (path.name, Resource.from_contents(json.loads(path.read_text()), default_specification=DRAFT4))
        for path in SCHEMAS.glob("*.json")
    ]
    registry: Registry = Registry().with_resources(resources)
    return Draft4Validator(json.loads((SCHEMAS / name).read_text()), registry=registry)


def xml_of(response: Any) -> ET.Element:
    return ET.fromstring(response.content)  # noqa: S314 - our own server's answer, not untrusted input


def valid(document: Any, schema: str) -> Any:
    errors = sorted(_validator(schema).iter_errors(document), key=str)
    assert not errors, [f"{list(error.absolute_path)}: {error.message}" for error in errors]
    return document


@pytest.fixture
def partner(client, database, hotline: Hotline) -> str:
    """A partner app's key that may submit service requests, after the street-light category exists."""
    assert client.post(f"{API}/categories", json=STREETLIGHT, headers=hotline.operator).status_code == 200
    return api_key_for(database, hotline.town, ("voice.open311.submit",))


def post(client, key: str | None, fmt: str = "json", **fields: Any):  # type: ignore[no-untyped-def]
    form: dict[str, Any] = {
        "service_code": "01.02",
        "lat": "30.2502",
        "long": "120.2001",
        "description": "小区门口路灯一直不亮。",
        "first_name": "三",
        "last_name": "张",
        "phone": "13800000001",
        "attribute[pole]": "HZ-0042",
        "attribute[state]": "dark",
        "attribute[hazards][]": ["wire", "traffic"],
        **fields,
    }
    if key is not None:
        form["api_key"] = key
    return client.post(f"{OPEN311}/requests.{fmt}", data={k: v for k, v in form.items() if v is not None})


def test_services_and_definitions_in_json_and_xml(client, partner) -> None:
    services = valid(client.get(f"{OPEN311}/services.json").json(), "services.json")
    by_code = {service["service_code"]: service for service in services}
    assert "01" not in by_code  # branches are groups, not services
    light = by_code["01.02"]
    assert light["metadata"] is True and light["group"] == "城乡建设" and light["type"] == "realtime"
    assert by_code["05.01"]["metadata"] is False
    english = client.get(f"{OPEN311}/services.json", headers={"Accept-Language": "en"}).json()
    assert {s["service_code"]: s["service_name"] for s in english}["01.02"] == "Street light out"

    xml = client.get(f"{OPEN311}/services.xml")
    assert xml.status_code == 200 and xml.headers["content-type"].startswith("text/xml")
    root = xml_of(xml)
    assert root.tag == "services"
    assert [s.findtext("service_code") for s in root.findall("service")] == [
        s["service_code"] for s in services
    ]
    assert root.find("service[service_code='01.02']/metadata").text == "true"  # type: ignore[union-attr]

    definition = valid(client.get(f"{OPEN311}/services/01.02.json").json(), "service-definition.json")
    assert [a["code"] for a in definition["attributes"]] == ["pole", "state", "hazards", "height"]
    assert definition["attributes"][1]["values"] == [
        {"key": "dark", "name": "不亮"},
        {"key": "blink", "name": "闪烁"},
    ]
    tree = xml_of(client.get(f"{OPEN311}/services/01.02.xml"))
    assert tree.tag == "service_definition"
    assert [v.findtext("key") for v in tree.findall("attributes/attribute[code='state']/values/value")] == [
        "dark",
        "blink",
    ]

    missing = client.get(f"{OPEN311}/services/77.json")
    assert missing.status_code == 404 and missing.json()[0]["code"] == 404
    missing_xml = xml_of(client.get(f"{OPEN311}/services/77.xml"))
    assert missing_xml.tag == "errors" and missing_xml.findtext("error/code") == "404"
    assert client.get(f"{OPEN311}/services.yaml").status_code == 404
    discovery = client.get(f"{OPEN311}/discovery.json").json()
    assert discovery["endpoints"][0]["url"].endswith("/open311/v2")
    assert xml_of(client.get(f"{OPEN311}/discovery.xml")).tag == "discovery"


def test_a_posted_request_enters_the_workflow_and_its_token_resolves(client, partner, hotline) -> None:
    created = post(client, partner)
    assert created.status_code == 201, created.text
    answer = created.json()
    assert set(answer[0]) == {"service_request_id", "token", "service_notice"}
    number, token = answer[0]["service_request_id"], answer[0]["token"]
    assert client.get(f"{OPEN311}/tokens/{token}.json").json() == [
        {"service_request_id": number, "token": token}
    ]
    assert xml_of(client.get(f"{OPEN311}/tokens/{token}.xml")).findtext("request/token") == token
    assert client.get(f"{OPEN311}/tokens/nope.json").status_code == 404

    ticket = client.get(f"{API}/tickets/{number}", headers=hotline.housing).json()
    assert ticket["channel"] == "open311" and ticket["status"] == "dispatched"
    assert ticket["department"] == "org-housing" and ticket["reporter"] == "张三 13800000001"
    assert ticket["attributes"] == {"pole": "HZ-0042", "state": "dark", "hazards": ["wire", "traffic"]}

    public = valid(client.get(f"{OPEN311}/requests/{number}.json").json(), "requests.json")
    assert public[0]["status"] == "open" and public[0]["agency_responsible"]
    assert "张" not in json.dumps(public, ensure_ascii=False)  # anonymous to the public
    assert [note["type"] for note in public[0]["notes"]] == ["received", "dispatched"]

    in_xml = post(client, partner, fmt="xml", **{"attribute[pole]": "HZ-0043"})
    assert in_xml.status_code == 201
    assert xml_of(in_xml).findtext("request/service_request_id")


def test_posting_needs_a_key_that_may_submit_and_valid_answers(client, database, partner, hotline) -> None:
    assert post(client, None).status_code == 403
    refused = post(client, "chk_not-a-real-key")
    assert refused.status_code == 403 and refused.json()[0]["code"] == 403
    reader = api_key_for(database, hotline.town, ("voice.tickets.handle",))
    assert post(client, reader).status_code == 403
    xml_refusal = xml_of(post(client, None, fmt="xml"))
    assert xml_refusal.tag == "errors" and xml_refusal.findtext("error/code") == "403"

    wrong = post(
        client,
        partner,
        **{
            "attribute[pole]": "",
            "attribute[state]": "on_fire",
            "attribute[height]": "tall",
            "attribute[x]": "1",
        },
    )
    assert wrong.status_code == 400
    described = wrong.json()[0]["description"]
    for code in ("attribute[pole]", "attribute[state]", "attribute[height]", "attribute[x]"):
        assert code in described
    assert post(client, partner, service_code="").status_code == 400
    assert post(client, partner, service_code="88").status_code == 404
    nowhere = post(client, partner, lat=None, long=None)
    assert nowhere.status_code == 400 and "address_string" in nowhere.json()[0]["description"]
    assert post(client, partner, lat="north", long="east").status_code == 400
    assert post(client, partner, lat="95", long="120").status_code == 400
    assert post(client, partner, media_url="javascript:alert(1)").status_code == 400
    by_address = post(client, partner, lat=None, long=None, address_string="文一路 100 号")
    assert by_address.status_code == 201
    assert client.get(f"{API}/tickets", headers=hotline.housing).json()["total"] == 1  # nothing else kept


def test_lists_filter_page_and_keep_the_90_day_rule(client, partner, hotline, monkeypatch) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=120)
    monkeypatch.setattr(ticket_service, "utcnow", lambda: long_ago)
    old = post(client, partner).json()[0]["service_request_id"]
    monkeypatch.undo()
    light = [post(client, partner).json()[0]["service_request_id"] for _ in range(3)]
    noise = report(client, hotline.resident, category="05.01").json()["number"]
    secret = report(client, hotline.resident, type="report").json()["number"]  # 举报 stays confidential
    client.post(f"{API}/tickets/{noise}/sign", headers=hotline.police)
    client.post(f"{API}/tickets/{noise}/reply", json={"text": "已劝导。"}, headers=hotline.police)

    listed = valid(client.get(f"{OPEN311}/requests.json").json(), "requests.json")
    numbers = [request["service_request_id"] for request in listed]
    assert set(numbers) == {*light, noise} and old not in numbers and secret not in numbers
    assert numbers == sorted(numbers, reverse=True)  # newest first
    closed = client.get(f"{OPEN311}/requests.json", params={"status": "closed"}).json()
    assert [(r["service_request_id"], r["status_notes"]) for r in closed] == [(noise, "已劝导。")]
    only_light = client.get(
        f"{OPEN311}/requests.json", params={"service_code": "01.02", "status": "open"}
    ).json()
    assert {r["service_request_id"] for r in only_light} == set(light)
    by_id = client.get(f"{OPEN311}/requests.json", params={"service_request_id": f"{old},{light[0]}"}).json()
    assert {r["service_request_id"] for r in by_id} == {old, light[0]}  # ids override the date window

    start = (long_ago - timedelta(days=1)).isoformat()
    window = client.get(f"{OPEN311}/requests.json", params={"start_date": start}).json()
    assert [r["service_request_id"] for r in window] == [old]
    too_wide = client.get(
        f"{OPEN311}/requests.json", params={"start_date": start, "end_date": datetime.now(UTC).isoformat()}
    )
    assert too_wide.status_code == 400 and "90" in too_wide.json()[0]["description"]
    assert client.get(f"{OPEN311}/requests.json", params={"start_date": "yesterday"}).status_code == 400
    assert client.get(f"{OPEN311}/requests.json", params={"status": "pending"}).status_code == 400

    pages = [
        [r["service_request_id"] for r in client.get(f"{OPEN311}/requests.json", params=p).json()]
        for p in ({"page_size": 2}, {"page_size": 2, "page": 2})
    ]
    assert pages[0] + pages[1] == numbers
    assert "notes" not in listed[0]
    with_notes = client.get(f"{OPEN311}/requests.json", params={"extensions": "true"}).json()
    assert all("notes" in request for request in with_notes)

    xml = xml_of(client.get(f"{OPEN311}/requests.xml"))
    assert xml.tag == "service_requests"
    assert [r.findtext("service_request_id") for r in xml.findall("request")] == numbers
    assert client.get(f"{OPEN311}/requests/{secret}.json").status_code == 404


def test_an_unknown_jurisdiction_is_not_found(client, partner, monkeypatch) -> None:
    monkeypatch.setenv("CITYHUB_VOICE__OPEN311_JURISDICTION", "hangzhou.example")
    clear_settings_cache()
    assert (
        client.get(f"{OPEN311}/services.json", params={"jurisdiction_id": "hangzhou.example"}).status_code
        == 200
    )
    assert client.get(f"{OPEN311}/services.json", params={"jurisdiction_id": "boston.gov"}).status_code == 404
    assert post(client, partner, jurisdiction_id="boston.gov").status_code == 404
