"""Data behind a resource from elsewhere: Excel workbooks load like CSV files (same report); an API source is
polled from a real local HTTP server (JSON with a records path, CSV; the same answer makes no version; a 500
or a timeout is an invalid version saying why, recorded once); an NGSI-LD source reads the context hub's
entities of a type; the poller takes only resources due by their update cycle; only the owner configures
and polls (both databases)."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from cityhub.cli.main import app as cli_app
from cityhub.domains import manifests
from cityhub.domains.exchange.models import Resource, Version
from cityhub.domains.exchange.service import sources
from cityhub.kernel import jobs
from cityhub.kernel.db import utcnow
from cityhub.kernel.models import Job
from cityhub.worker import build_registry
from tests.domains.exchange.world import API, CSV, ITEMS, Exchange, build_exchange, registered

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TIMEOUT_SECONDS = 1
NAMES = [item["name"] for item in ITEMS]
ROWS = [
    {
        "district": "西湖区",
        "year": 2025,
        "population": 1187000,
        "elderly_share": 0.21,
        "surveyed_on": "2025-11-01",
    },
    {
        "district": "滨江区",
        "year": 2025,
        "population": 541000,
        "elderly_share": 0.12,
        "surveyed_on": "2025-11-01",
    },
    {
        "district": "上城区",
        "year": 2025,
        "population": 1326000,
        "elderly_share": 0.24,
        "surveyed_on": "2025-11-02",
    },
]


@pytest.fixture(autouse=True)
def _short_source_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYHUB_EXCHANGE__SOURCE_TIMEOUT_SECONDS", str(TIMEOUT_SECONDS))


class Answers:
    """What the local source server answers, by path: (status, content type, body, delay in seconds)."""

    def __init__(self) -> None:
        self.by_path: dict[str, tuple[int, str, bytes, float]] = {}
        self.hits: dict[str, int] = {}

    def set(self, path: str, body: bytes, content_type: str = "application/json", status: int = 200,
            delay: float = 0.0) -> None:  # fmt: skip
        self.by_path[path] = (status, content_type, body, delay)


@pytest.fixture
def source_server() -> Iterator[tuple[str, Answers]]:
    answers = Answers()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            answers.hits[self.path] = answers.hits.get(self.path, 0) + 1
            status, content_type, body, delay = answers.by_path.get(self.path, (404, "text/plain", b"", 0.0))
            time.sleep(delay)
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the poller gave up waiting
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", answers
    server.shutdown()
    server.server_close()


def _workbook(rows: list[list[Any]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _post(client, world: Exchange, code: str, content: bytes, content_type: str):  # type: ignore[no-untyped-def]
    headers = {**world.owner, "Content-Type": content_type}
    return client.post(f"{API}/resources/{code}/versions", content=content, headers=headers)


def _rows(client, world: Exchange, code: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    answer = client.get(f"{API}/resources/{code}/rows", headers=world.owner)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["rows"])


def _versions(client, world: Exchange, code: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    return list(client.get(f"{API}/resources/{code}/versions", headers=world.owner).json())


# -- Excel workbooks ----------------------------------------------------------------------------------------


def test_an_excel_workbook_loads_like_the_same_csv_file(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    xlsx, csv = registered(client, world, "stats-xlsx"), registered(client, world, "stats-csv")
    typed = [
        [*NAMES],
        ["西湖区", 2025, 1187000, 0.21, datetime(2025, 11, 1)],  # a date cell comes back as a datetime
        ["滨江区", 2025, 541000, 0.12, date(2025, 11, 1)],
        ["上城区", 2025.0, 1326000, 0.24, "2025-11-02"],  # a whole number stored as a float; a date as text
        [None, None, None, None, None],  # formatted, empty rows at the end are no rows
        [],
    ]
    loaded = _post(client, world, xlsx, _workbook(typed), XLSX)
    assert loaded.status_code == 201, loaded.text
    assert (loaded.json()["valid"], loaded.json()["rows"], loaded.json()["current"]) == (True, 3, True)
    assert _post(client, world, csv, CSV.encode(), "text/csv").json()["valid"] is True
    assert _rows(client, world, xlsx) == _rows(client, world, csv) == ROWS

    bad = [
        [*NAMES, "extra"],
        ["西湖区", "x", 1187000, 0.21, "2025-11-01", 1],
        [None, 2025, None, "many", datetime(2025, 11, 1, 8, 30)],
        [],  # an empty row between rows is a row, as in a CSV file
        ["上城区", 2025, 1326000, True, "2025-13-01"],
    ]
    bad_csv = (
        "district,year,population,elderly_share,surveyed_on,extra\n"
        "西湖区,x,1187000,0.21,2025-11-01,1\n"
        ",2025,,many,2025-11-01T08:30:00\n"
        "\n"
        "上城区,2025,1326000,true,2025-13-01\n"
    )
    refused = _post(client, world, xlsx, _workbook(bad), XLSX).json()
    refused_csv = _post(client, world, csv, bad_csv.encode(), "text/csv").json()
    assert refused["valid"] is False and refused["current"] is False and refused["rows"] == 0
    assert refused["errors"] == refused_csv["errors"] and refused["error_count"] == refused_csv["error_count"]
    assert {(error["row"], error["field"]) for error in refused["errors"]} >= {
        (None, "extra"),
        (1, "year"),
        (2, "district"),
        (2, "population"),
        (2, "elderly_share"),
        (2, "surveyed_on"),
        (3, "district"),
        (4, "elderly_share"),
        (4, "surveyed_on"),
    }
    assert client.get(f"{API}/resources/{xlsx}", headers=world.owner).json()["current_version"] == 1


def test_a_file_that_is_no_workbook_is_refused_with_its_reason(client, database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = registered(client, world)
    for content in (b"district,year\n", b"PK\x03\x04 not really a zip", _workbook([])[:200]):
        answer = _post(client, world, code, content, XLSX)
        assert answer.status_code == 422, answer.text
        assert "xlsx" in answer.json()["detail"] and answer.json()["field"] == "file"
    assert _versions(client, world, code) == []  # nothing half-written
    # The command takes workbooks by their suffix; an empty sheet lacks every column.
    good = tmp_path / "population.xlsx"
    good.write_bytes(_workbook([NAMES, *[[row[name] for name in NAMES] for row in ROWS]]))
    empty = tmp_path / "empty.xlsx"
    empty.write_bytes(_workbook([]))
    runner = CliRunner()
    loaded = runner.invoke(cli_app, ["exchange", "load", code, str(good)])
    assert loaded.exit_code == 0 and "3 rows" in loaded.output, loaded.output
    refused = runner.invoke(cli_app, ["exchange", "load", code, str(empty)])
    assert refused.exit_code == 1 and "district, year, population" in refused.output, refused.output
    assert [(v["number"], v["valid"], v["file_name"]) for v in _versions(client, world, code)] == [
        (2, False, "empty.xlsx"),
        (1, True, "population.xlsx"),
    ]


# -- API sources --------------------------------------------------------------------------------------------


def _set_source(client, world: Exchange, code: str, body: dict[str, Any], headers=None):  # type: ignore[no-untyped-def]
    return client.put(f"{API}/resources/{code}/source", json=body, headers=headers or world.owner)


def _poll(client, world: Exchange, code: str, headers=None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    answer = client.post(f"{API}/resources/{code}/poll", headers=headers or world.owner)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_an_api_source_is_polled_into_versions(client, database, source_server) -> None:  # type: ignore[no-untyped-def]
    base, answers = source_server
    world = build_exchange(client, database)
    code = registered(client, world)
    answers.set("/population", json.dumps({"data": {"items": ROWS}, "total": 3}).encode())
    configured = _set_source(
        client, world, code, {"source": "api", "url": f"{base}/population", "records": "data.items"}
    )
    assert configured.status_code == 200, configured.text
    assert configured.json()["config"] == {
        "url": f"{base}/population",
        "format": "json",
        "records": "data.items",
    }
    assert configured.json()["polled_at"] is None and configured.json()["next_poll_at"] is not None

    first = _poll(client, world, code)
    assert first["outcome"] == "loaded" and first["error"] is None and first["polled_at"] is not None
    assert (first["version"]["source"], first["version"]["rows"], first["version"]["current"]) == (
        "api",
        3,
        True,
    )
    assert first["version"]["file_name"] == f"{base}/population"
    assert _rows(client, world, code) == ROWS
    entry = client.get(f"{API}/resources/{code}", headers=world.owner).json()
    assert entry["source"] == "api" and entry["polled_at"] is not None and entry["current_version"] == 1

    assert _poll(client, world, code)["outcome"] == "unchanged"  # the same answer: no version
    assert len(_versions(client, world, code)) == 1 and answers.hits["/population"] == 2

    changed = [{**ROWS[0], "population": 1190000}]
    answers.set("/population", json.dumps({"data": {"items": changed}}).encode())
    second = _poll(client, world, code)
    assert second["outcome"] == "loaded" and second["version"]["number"] == 2
    assert _rows(client, world, code) == changed

    # A CSV answer, checked as an uploaded CSV file is
    answers.set("/population.csv", CSV.encode("utf-8-sig"), "text/csv; charset=utf-8")
    csv_source = {"source": "api", "url": f"{base}/population.csv", "format": "csv"}
    assert _set_source(client, world, code, csv_source).status_code == 200
    third = _poll(client, world, code)
    assert third["outcome"] == "loaded" and third["version"]["rows"] == 3
    assert _rows(client, world, code) == ROWS

    # Data that does not validate: an invalid version with its report, the last good one stays current
    answers.set("/population.csv", b"district,year,population\n\xe8\xa5\xbf,x,1\n", "text/csv")
    refused = _poll(client, world, code)
    assert refused["outcome"] == "invalid" and refused["error"] is None
    assert refused["version"]["valid"] is False and refused["version"]["error_count"] >= 2
    assert client.get(f"{API}/resources/{code}", headers=world.owner).json()["current_version"] == 3


def test_a_failing_source_is_an_invalid_version_recorded_once(client, database, source_server) -> None:  # type: ignore[no-untyped-def]
    base, answers = source_server
    world = build_exchange(client, database)
    code = registered(client, world)
    answers.set("/rows", json.dumps(ROWS).encode())
    assert _set_source(client, world, code, {"source": "api", "url": f"{base}/rows"}).status_code == 200
    assert _poll(client, world, code)["outcome"] == "loaded"

    answers.set("/rows", b"internal error", "text/plain", status=500)
    failed = _poll(client, world, code)
    assert failed["outcome"] == "invalid" and "500" in failed["error"]
    version = failed["version"]
    assert (version["valid"], version["current"], version["sha256"], version["file_name"]) == (
        False,
        False,
        None,
        f"{base}/rows",
    )
    assert [error["message"] for error in version["errors"]] == [failed["error"]]
    again = _poll(client, world, code)  # the same failure: no version per poll
    assert again["outcome"] == "unchanged" and again["error"] == failed["error"]
    assert [v["number"] for v in _versions(client, world, code)] == [2, 1]

    answers.set("/rows", json.dumps(ROWS).encode(), delay=TIMEOUT_SECONDS + 1.5)
    started = time.monotonic()
    slow = _poll(client, world, code)
    assert time.monotonic() - started < TIMEOUT_SECONDS + 1.4  # the poller does not wait for it
    assert slow["outcome"] == "invalid" and str(TIMEOUT_SECONDS) in slow["error"]

    answers.set("/rows", b'{"rows": [', status=200)
    broken = _poll(client, world, code)
    assert broken["outcome"] == "invalid" and "JSON" in broken["version"]["errors"][0]["message"]

    answers.set("/rows", json.dumps(ROWS).encode())
    back = _poll(client, world, code)  # the data consumers read did not change: no version
    assert back["outcome"] == "unchanged" and back["error"] is None
    entry = client.get(f"{API}/resources/{code}", headers=world.owner).json()
    assert entry["current_version"] == 1 and entry["rows"] == 3
    unreachable = {"source": "api", "url": "http://127.0.0.1:9/rows"}
    assert _set_source(client, world, code, unreachable).status_code == 200
    assert "Connection refused" in _poll(client, world, code)["error"]  # the reason, in every language


def test_sources_are_checked_and_only_their_owner_sets_and_polls_them(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = registered(client, world)
    for body in (
        {"source": "api", "url": "ftp://example.org/rows.csv"},
        {"source": "api", "url": "file:///etc/passwd"},
        {"source": "api", "url": "https://user:secret@example.org/rows"},
        {"source": "api", "url": "https://example.org/rows", "format": "csv", "records": "data"},
        {"source": "api", "url": "https://example.org/rows", "format": "xml"},
        {"source": "api", "url": "https://example.org/rows", "records": "data..items"},
        {"source": "api", "url": "https://example.org/rows", "headers": {"Authorization": "x"}},
        {"source": "ngsi-ld", "entity_type": "Population", "attributes": {"nope": "district"}},
        {"source": "ngsi-ld", "entity_type": "Population", "attributes": {"district": "district"}},
        {"source": "ngsi-ld", "entity_type": "Population", "attributes": {}},
        {"source": "ngsi-ld", "entity_type": "Bad Type", "attributes": {"district": "a"}},
        {"source": "mail"},
    ):
        answer = _set_source(client, world, code, body)
        assert answer.status_code == 422, (body, answer.text)
    mapping = {"district": "id", "year": "year", "population": "population"}
    unknown_tenant = {
        "source": "ngsi-ld",
        "tenant": "nowhere",
        "entity_type": "Population",
        "attributes": mapping,
    }
    assert _set_source(client, world, code, unknown_tenant).status_code == 404
    good = {"source": "api", "url": "https://example.org/rows"}
    for headers in (world.consumer, world.other, world.resident):
        assert _set_source(client, world, code, good, headers).status_code == 403
        assert client.get(f"{API}/resources/{code}/source", headers=headers).status_code == 403
        assert client.post(f"{API}/resources/{code}/poll", headers=headers).status_code == 403
    assert client.put(f"{API}/resources/{code}/source", json=good).status_code == 401
    assert client.post(f"{API}/resources/{code}/poll", headers=world.owner).status_code == 409  # an upload
    assert _set_source(client, world, code, good, world.operator).status_code == 200  # the operator may
    assert client.get(f"{API}/resources/{code}/source", headers=world.owner).json()["source"] == "api"
    # Other departments see where data comes from, not the address
    seen = client.get(f"{API}/resources/{code}", headers=world.owner).json()
    assert seen["source"] == "api" and "source_config" not in seen
    back = _set_source(client, world, code, {"source": "upload"})
    assert back.json() == {**back.json(), "source": "upload", "config": {}, "next_poll_at": None}
    with database.reading() as session:
        assert session.scalar(select(func.count()).select_from(Version)) == 0  # nothing was polled


# -- NGSI-LD sources ----------------------------------------------------------------------------------------

AIR_ITEMS = [
    {"name": "station", "title": "站点", "type": "string", "required": True},
    {"name": "entity", "title": "实体", "type": "string", "required": True},
    {"name": "pm25", "title": "PM2.5", "type": "number"},
    {"name": "observed", "title": "观测时间", "type": "datetime"},
    {"name": "location", "title": "位置", "type": "string"},
    {"name": "device", "title": "设备", "type": "string"},
    {"name": "note", "title": "备注", "type": "string"},
]
AIR_MAPPING = {
    "station": "stationName",
    "entity": "id",
    "pm25": "pm25",
    "observed": "dateObserved",
    "location": "location",
    "device": "refDevice",
}


def _air(number: int, pm25: float) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:AirQualityObserved:{number}",
        "type": "AirQualityObserved",
        "stationName": {"type": "Property", "value": f"站点{number}"},
        "pm25": {"type": "Property", "value": pm25, "unitCode": "GQ"},
        "dateObserved": {
            "type": "Property",
            "value": {"@type": "DateTime", "@value": "2025-11-01T08:00:00Z"},
        },
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [120.15, 30.28 + number]},
        },
        "refDevice": {"type": "Relationship", "object": f"urn:ngsi-ld:Device:{number}"},
    }


def test_an_ngsi_ld_source_reads_the_context_hubs_entities(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = registered(client, world, "env-air", data_items=AIR_ITEMS, update_cycle="realtime")
    for number, pm25 in ((1, 35.5), (2, 12)):
        created = client.post("/ngsi-ld/v1/entities", json=_air(number, pm25), headers=world.operator)
        assert created.status_code == 201, created.text
    other = {"id": "urn:ngsi-ld:WeatherObserved:1", "type": "WeatherObserved", "stationName": "x"}
    assert client.post("/ngsi-ld/v1/entities", json=other, headers=world.operator).status_code == 201
    body = {"source": "ngsi-ld", "entity_type": "AirQualityObserved", "attributes": AIR_MAPPING}
    configured = _set_source(client, world, code, body)
    assert configured.status_code == 200, configured.text
    assert configured.json()["config"] == {
        "tenant": None,
        "entity_type": "AirQualityObserved",
        "attributes": AIR_MAPPING,
    }

    polled = _poll(client, world, code)
    assert polled["outcome"] == "loaded" and polled["version"]["source"] == "ngsi-ld", polled
    assert polled["version"]["file_name"] == "-/AirQualityObserved"
    assert _rows(client, world, code) == [
        {
            "station": f"站点{number}",
            "entity": f"urn:ngsi-ld:AirQualityObserved:{number}",
            "pm25": pm25,
            "observed": "2025-11-01T08:00:00+00:00",
            "location": f"120.15,{30.28 + number}",
            "device": f"urn:ngsi-ld:Device:{number}",
            "note": None,
        }
        for number, pm25 in ((1, 35.5), (2, 12))
    ]
    assert _poll(client, world, code)["outcome"] == "unchanged"
    patched = client.patch(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:2/attrs",
        json={"pm25": {"type": "Property", "value": 80}},
        headers=world.operator,
    )
    assert patched.status_code == 204, patched.text
    again = _poll(client, world, code)
    assert again["outcome"] == "loaded" and again["version"]["number"] == 2
    assert [row["pm25"] for row in _rows(client, world, code)] == [35.5, 80]
    # An entity without a required attribute: the version is invalid, its report names the row
    bare = {"id": "urn:ngsi-ld:AirQualityObserved:3", "type": "AirQualityObserved"}
    assert client.post("/ngsi-ld/v1/entities", json=bare, headers=world.operator).status_code == 201
    refused = _poll(client, world, code)
    assert refused["outcome"] == "invalid"
    assert [(e["row"], e["field"]) for e in refused["version"]["errors"]] == [(3, "station")]


# -- the poller ---------------------------------------------------------------------------------------------


def test_the_poller_takes_resources_due_by_their_update_cycle(
    client, database, settings, source_server
) -> None:  # type: ignore[no-untyped-def]
    base, answers = source_server
    world = build_exchange(client, database)
    answers.set("/rows", json.dumps(ROWS).encode())
    now = utcnow()
    cases = {  # code: (update cycle, last poll, status)
        "daily-due": ("daily", now - timedelta(days=1, minutes=1), "draft"),
        "daily-fresh": ("daily", now - timedelta(hours=23), "draft"),
        "realtime-due": ("realtime", now - timedelta(minutes=6), "published"),
        "realtime-fresh": ("realtime", now - timedelta(minutes=2), "published"),
        "monthly-due": ("monthly", now - timedelta(days=31), "draft"),
        "yearly-fresh": ("yearly", now - timedelta(days=300), "draft"),
        "never-polled": ("weekly", None, "draft"),
        "irregular": ("irregular", None, "draft"),
        "retired": ("daily", None, "retired"),
    }
    for code, (cycle, _polled, _status) in cases.items():
        registered(client, world, code, update_cycle=cycle)
        assert _set_source(client, world, code, {"source": "api", "url": f"{base}/rows"}).status_code == 200
    registered(client, world, "uploaded", update_cycle="realtime")
    with database.unit_of_work() as session:
        for code, (_cycle, polled, status) in cases.items():
            session.execute(
                update(Resource).where(Resource.code == code).values(polled_at=polled, status=status)
            )
    due = {"daily-due", "realtime-due", "monthly-due", "never-polled"}
    with database.reading() as session:
        assert {target.code for target in sources.due_targets(session, utcnow())} == due
    with database.unit_of_work() as session:
        assert sources.queue_due(session, now) == 4
        assert sources.queue_due(session, now) == 0  # once a minute at most
    registry = build_registry(manifests())
    while jobs.run_next(database, registry, settings, "test-worker"):
        pass
    with database.reading() as session:
        fetched = session.scalars(select(Job).where(Job.name == sources.FETCH_JOB)).all()
        assert sorted(job.payload["code"] for job in fetched) == sorted(due)
        assert {job.status for job in fetched} == {"done"}
        made = session.execute(
            select(Resource.code, Version.number, Version.valid, Version.loaded_by).join(
                Version, Version.resource_id == Resource.id
            )
        ).all()
        assert sorted(made) == sorted((code, 1, True, "system:exchange-poller") for code in due)
        assert not sources.due_targets(session, utcnow())
        polled = dict(session.execute(select(Resource.code, Resource.polled_at)).all())
    assert all(polled[code] is not None and polled[code] > now for code in due)
    # A queued fetch of a resource polled meanwhile does nothing
    with database.unit_of_work() as session:
        config = {"url": f"{base}/rows", "format": "json", "records": None}
        jobs.enqueue(session, sources.FETCH_JOB, {"code": "daily-due", "source": "api", "config": config})
    assert jobs.run_next(database, registry, settings, "test-worker")
    assert len(_versions(client, world, "daily-due")) == 1 and answers.hits["/rows"] == len(due) + 1
    # `cityhub exchange poll` polls what is due, or the one named, with a table of outcomes
    runner = CliRunner()
    nothing = runner.invoke(cli_app, ["exchange", "poll"])
    assert nothing.exit_code == 0 and "nothing is due" in nothing.output, nothing.output
    answers.set("/rows", json.dumps(ROWS[:1]).encode())
    one = runner.invoke(cli_app, ["exchange", "poll", "daily-fresh"])
    assert one.exit_code == 0 and "loaded" in one.output, one.output
    answers.set("/rows", b"nope", "text/plain", status=503)
    failed = runner.invoke(cli_app, ["exchange", "poll", "daily-fresh"])
    assert failed.exit_code == 1 and "503" in failed.output, failed.output
    assert runner.invoke(cli_app, ["exchange", "poll", "uploaded"]).exit_code == 2
