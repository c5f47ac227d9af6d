"""The 12345 department console and assessment over a year of tickets (default 1,000,000).

Fills a fresh, migrated database with N tickets spread over 20 departments (unevenly, as in a real city),
40 categories under 10 branches, five types and the 365 days up to now, in arrival order: tickets past
their deadline are mostly closed (some answered late, some signed late, a few still open and overdue),
recent ones are at every step of the workflow; 1 % are merged duplicates, a few of the last two days wait
for dispatch. Core bulk inserts: executemany on SQLite, COPY on PostgreSQL; then the assessment's rollup of
closed tickets is rebuilt (the inserts bypass the workflow that keeps it) and ANALYZE.

Then a real server (`cityhub serve`, one worker) answers, one request at a time:
- (a) the department queue page /console/voice (a department's staff member, logged in through the form):
  the default page, the overdue filter, closed tickets, the second page; and the operator's whole-city queue;
- (b) GET /api/v1/voice/assessment: the operator's city-wide figures for this month, last month and this
  quarter, and a department's own month.

Prints one JSON document with p50/p95 (ms) per request kind.
Usage: .venv/bin/python bench/voice_queue.py [--tickets 1000000] [--requests 100]
       [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--no-sqlite]
       [--sqlite-file PATH] [--only queue|assessment]
``--sqlite-file``: bench SQLite in that file, kept afterwards: filled when it does not exist, else reused as
filled before (migrated to head, the model's missing indexes created, ANALYZE; ``--tickets`` is then what it
holds). ``--only``: measure only the queue pages or only the assessment (the other section stays empty).
Targets: queue page p95 <= 100 ms, assessment p95 <= 300 ms.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import Table, inspect, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench._harness as harness
from cityhub.domains import manifests
from cityhub.domains.identity import system_principal
from cityhub.domains.identity.models import Organization
from cityhub.domains.identity.service import accounts, orgs, people
from cityhub.domains.voice import schemas
from cityhub.domains.voice.models import Category, Ticket
from cityhub.domains.voice.service import categories, rollup
from cityhub.kernel.db import Database
from cityhub.kernel.security import hash_password
from cityhub.migrations import upgrade_engine

TZ = ZoneInfo("Asia/Shanghai")
DEPARTMENTS = 20
BRANCHES = 10
PASSWORD = "bench-password-123"
WEST, SOUTH = 120.05, 30.10  # the city: about 35 x 30 km
TYPES = ("consultation", "help", "suggestion", "complaint", "report")
TYPE_WEIGHTS = (25, 30, 10, 30, 5)
TYPE_DAYS = {"consultation": 3, "help": 14, "suggestion": 14, "complaint": 21, "report": 21}  # calendar days
COLUMNS = (
    "id", "number", "type", "category_id", "channel", "account_id", "reporter_name", "reporter_phone",
    "description", "address", "lon", "lat", "cell", "org_unit_id", "organization_id", "status", "sign_due_at",
    "deadline_at", "signed_at", "replied_at", "reply", "callback_due_at", "satisfaction", "closed_at",
    "reopened", "merged_into_id", "warned_at", "escalated_at", "attributes", "media_url", "token",
    "external_ref", "emergency", "acknowledged_at", "acknowledged_by", "alarm_escalated_at", "created_at",
    "updated_at",
)  # fmt: skip
WHAT = ("路灯不亮", "噪音扰民", "道路破损", "垃圾未清运", "占道经营", "电梯故障", "供水中断", "违章停车")


# -- the city ---------------------------------------------------------------------------------------------


def load_city(url: str) -> dict[str, Any]:
    """Units, 20 departments, the category tree, a staff member of the busiest department and an operator."""
    manifests()
    database = Database.from_url(url)
    with database.unit_of_work() as session:
        city = orgs.create_unit(session, orgs.OrgUnitInput(kind="city", code="BENCH", name="基准市"))
        for kind, code, parent in (("district", "D1", "BENCH"), ("subdistrict", "S1", "D1")):
            orgs.create_unit(session, orgs.OrgUnitInput(kind=kind, code=code, name=code, parent_code=parent))
        communities = []
        for n in range(20):
            unit = orgs.create_unit(
                session,
                orgs.OrgUnitInput(
                    kind="community", code=f"C{n:02d}", name=f"社区{n}", parent_code="S1",
                    lon=WEST + 0.07 * (n % 5) + 0.035, lat=SOUTH + 0.07 * (n // 5) + 0.035,
                ),
            )  # fmt: skip
            communities.append(unit.id)
        departments = []
        for n in range(DEPARTMENTS):
            organization = Organization(
                kind="department", code=f"dept-{n:02d}", name=f"部门{n}", org_unit_id=city.id
            )
            session.add(organization)
            session.flush()
            departments.append(organization.id)
        tree = [
            schemas.CategoryIn(code=f"{b:02d}", name_zh=f"大类{b}", name_en=f"Branch {b}")
            for b in range(BRANCHES)
        ]
        tree += [
            schemas.CategoryIn(
                code=f"{n // 4:02d}.{n % 4 + 1:02d}", name_zh=f"类目{n}", name_en=f"Category {n}",
                organization_code=f"dept-{n % DEPARTMENTS:02d}",
            )
            for n in range(4 * BRANCHES)
        ]  # fmt: skip
        root = system_principal(session, "bench", [categories.MANAGE])
        categories.import_categories(session, root, schemas.CategoriesIn(categories=tree))
        leaves = {
            code: category_id
            for code, category_id in session.execute(select(Category.code, Category.id))
            if "." in code
        }
        password_hash = hash_password(PASSWORD)
        for username, role, organization_id in (
            ("staff0", "department_staff", departments[0]),
            ("operator0", "operator", None),
        ):
            person = people.create_person(
                session, people.PersonInput(name=username, verification_level=2), "s"
            )
            account = accounts.create_account(
                session, person, username, PASSWORD, password_hash=password_hash
            )
            accounts.grant_role(session, None, account, role, city, organization_id)
    database.dispose()
    return {"communities": communities, "departments": departments, "leaves": leaves}


# -- a year of tickets ------------------------------------------------------------------------------------


def tickets(count: int, city: dict[str, Any], now: datetime) -> Iterator[dict[str, Any]]:
    """``count`` tickets in arrival order over the year up to ``now``."""
    rng = random.Random(12345)
    departments = city["departments"]
    weights = [1 / (rank + 1) ** 0.6 for rank in range(DEPARTMENTS)]  # some departments get far more
    by_department: dict[int, list[int]] = {d: [] for d in departments}
    for code, category_id in sorted(city["leaves"].items()):
        index = (int(code[:2]) * 4 + int(code[3:]) - 1) % DEPARTMENTS
        by_department[departments[index]].append(category_id)
    hotspots = [(WEST + rng.random() * 0.35, SOUTH + rng.random() * 0.3) for _ in range(12)]
    start = now - timedelta(days=365)
    span = (now - start).total_seconds()
    for n in range(1, count + 1):
        created = start + timedelta(seconds=span * (n - 0.5) / count)
        department = rng.choices(departments, weights)[0]
        ticket_type = rng.choices(TYPES, TYPE_WEIGHTS)[0]
        sign_due = created + timedelta(hours=rng.choice((24, 24, 24, 72)))
        deadline = created + timedelta(days=TYPE_DAYS[ticket_type])
        age = (now - created).total_seconds()
        length = (deadline - created).total_seconds()
        organization_id: int | None = department
        status, signed, replied, closed, satisfaction = _progress(
            rng, created, sign_due, deadline, age / length
        )
        if age < 2 * 86400 and rng.random() < 0.05:
            organization_id, status, signed, replied, closed, satisfaction = (
                None,
                "received",
                None,
                None,
                None,
                None,
            )
        elif rng.random() < 0.01:
            status = "merged"
        spot = rng.choice(hotspots)
        lon = min(max(rng.gauss(spot[0], 0.03), WEST), WEST + 0.35)
        lat = min(max(rng.gauss(spot[1], 0.03), SOUTH), SOUTH + 0.3)
        yield {
            "id": n,
            "number": f"{created.astimezone(TZ):%Y%m%d}{n:07d}",
            "type": ticket_type,
            "category_id": rng.choice(by_department[department]),
            "channel": rng.choice(("app", "phone", "phone", "open311")),
            "account_id": None,
            "reporter_name": "市民",
            "reporter_phone": "",
            "description": f"{rng.choice(WHAT)}，请尽快处理。",
            "address": "",
            "lon": round(lon, 6),
            "lat": round(lat, 6),
            "cell": None,
            "org_unit_id": rng.choice(city["communities"]),
            "organization_id": organization_id,
            "status": status,
            "sign_due_at": sign_due,
            "deadline_at": deadline,
            "signed_at": signed,
            "replied_at": replied,
            "reply": "已处理。" if replied else "",
            "callback_due_at": None,
            "satisfaction": satisfaction,
            "closed_at": closed,
            "reopened": 0,
            "merged_into_id": None,
            "warned_at": None,
            "escalated_at": None,
            "attributes": "{}",
            "media_url": "",
            "token": None,
            "external_ref": None,
            "emergency": False,
            "acknowledged_at": None,
            "acknowledged_by": None,
            "alarm_escalated_at": None,
            "created_at": created,
            "updated_at": closed or replied or signed or created,
        }


def _progress(
    rng: random.Random, created: datetime, sign_due: datetime, deadline: datetime, elapsed: float
) -> tuple[str, datetime | None, datetime | None, datetime | None, int | None]:
    """Status, signed, replied, closed and satisfaction of a ticket ``elapsed`` (share of its time) old."""
    length = deadline - created
    sign_time = created + (sign_due - created) * rng.uniform(0.05, 1.25)  # about 1 in 6 signed late
    reply_time = created + length * rng.uniform(0.1, 1.12)  # about 1 in 10 answered late
    if elapsed < 1:
        step = rng.random() * min(1.0, elapsed * 1.5)
        if step < 0.1 or sign_time > created + length * elapsed:
            return "dispatched", None, None, None, None
        if step < 0.6 or reply_time > created + length * elapsed:
            return "handling", sign_time, None, None, None
        if step < 0.8:
            return "replied", sign_time, reply_time, None, None
        return "closed", sign_time, reply_time, reply_time + timedelta(days=1), _satisfaction(rng)
    fate = rng.random()
    if fate < 0.005:
        return "handling", sign_time, None, None, None  # stuck: overdue and still open
    if fate < 0.03:
        return "replied", sign_time, reply_time, None, None
    return "closed", sign_time, reply_time, reply_time + timedelta(days=1), _satisfaction(rng)


def _satisfaction(rng: random.Random) -> int | None:
    if rng.random() < 0.2:
        return None  # no callback reached the reporter
    return rng.choices((5, 4, 3, 2, 1), (50, 30, 12, 5, 3))[0]


def fill(url: str, count: int, city: dict[str, Any], now: datetime) -> tuple[float, list[str]]:
    """Insert the tickets in chunks, then create the model's indexes the migrations lack yet (named in the
    output), rebuild the assessment's rollup and ANALYZE; seconds taken."""
    started = time.perf_counter()
    database = Database.from_url(url)
    engine = database.engine
    present = {index["name"] for index in inspect(engine).get_indexes("voice_ticket")}
    table = cast(Table, Ticket.__table__)
    missing = [index for index in table.indexes if index.name not in present]
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            psycopg_connection: Any = raw.driver_connection  # COPY is psycopg's, not the DB-API's
            with psycopg_connection.cursor() as cursor:
                with cursor.copy(f"COPY voice_ticket ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                    for row in tickets(count, city, now):
                        copy.write_row([row[column] for column in COLUMNS])
                # only once the COPY has ended: a statement sent during it waits forever
                cursor.execute(f"SELECT setval('voice_ticket_id_seq', {count})")
            psycopg_connection.commit()
        finally:
            raw.close()
    else:
        processors: dict[str, Callable[[Any], Any]] = {}
        for column in COLUMNS:
            processor = table.c[column].type.dialect_impl(engine.dialect).bind_processor(engine.dialect)
            if processor is not None and column != "attributes":
                processors[column] = processor
        statement = (
            f"INSERT INTO voice_ticket ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"  # noqa: S608 fixed names
        )
        chunk: list[tuple[Any, ...]] = []
        with engine.begin() as connection:
            for row in tickets(count, city, now):
                chunk.append(tuple(processors[c](row[c]) if c in processors else row[c] for c in COLUMNS))
                if len(chunk) == 20000:
                    connection.exec_driver_sql(statement, chunk)
                    chunk = []
            if chunk:
                connection.exec_driver_sql(statement, chunk)
    for index in missing:
        index.create(engine)
    with database.unit_of_work() as session:
        rollup.rebuild(session, str(TZ))  # the tickets were inserted behind the workflow's back
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    database.dispose()
    return time.perf_counter() - started, sorted(str(index.name) for index in missing)


# -- measuring --------------------------------------------------------------------------------------------


def logged_in(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60, headers={"Accept": "text/html"})
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', form.text)
    assert token is not None, "no CSRF field on the login form"
    answer = client.post(
        "/login", data={"username": username, "password": PASSWORD, "next": "/", "csrf_token": token.group(1)}
    )
    assert answer.status_code in (302, 303), answer.text[:300]
    return client


def bearer(base: str, username: str) -> dict[str, str]:
    answer = httpx.post(f"{base}/api/v1/identity/token", data={"username": username, "password": PASSWORD})
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def timed(
    client: httpx.Client, path: str, requests: int, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    for _ in range(3):  # warm up: caches, prepared plans, pages of the database in memory
        client.get(path, headers=headers).raise_for_status()
    latencies = []
    size = 0
    for _ in range(requests):
        started = time.perf_counter()
        answer = client.get(path, headers=headers)
        latencies.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
        size = len(answer.content)
    latencies.sort()
    return {
        "path": path,
        "requests": requests,
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(latencies[max(0, math.ceil(0.95 * len(latencies)) - 1)], 1),
        "max_ms": round(latencies[-1], 1),
        "bytes": size,
    }


@contextmanager
def kept_sqlite(path: Path) -> Iterator[str]:
    """The URL of a SQLite database in ``path``, migrated to head; kept afterwards."""
    url = f"sqlite:///{path.resolve()}"
    database = Database.from_url(url)
    upgrade_engine(database.engine)
    database.dispose()
    yield url


def reuse(url: str) -> tuple[int, list[str]]:
    """A database filled before: the model's indexes it lacks created, ANALYZE; its ticket count."""
    database = Database.from_url(url)
    engine = database.engine
    present = {index["name"] for index in inspect(engine).get_indexes("voice_ticket")}
    missing = [index for index in cast(Table, Ticket.__table__).indexes if index.name not in present]
    for index in missing:
        index.create(engine)
    with engine.begin() as connection:
        if missing:
            connection.exec_driver_sql("ANALYZE")
        count = int(connection.exec_driver_sql("SELECT count(*) FROM voice_ticket").scalar_one())
    database.dispose()
    return count, sorted(str(index.name) for index in missing)


def bench_backend(
    backend: str, count: int, requests: int, sqlite_file: Path | None = None, only: str | None = None
) -> dict[str, Any]:
    now = datetime.now(UTC)
    filled = sqlite_file is not None and backend == "sqlite" and sqlite_file.exists()
    database = (
        kept_sqlite(sqlite_file)
        if sqlite_file is not None and backend == "sqlite"
        else harness.fresh_database(backend)
    )
    with database as url, tempfile.TemporaryDirectory() as var_dir:
        if filled:
            fill_seconds = 0.0
            count, created = reuse(url)
        else:
            city = load_city(url)
            fill_seconds, created = fill(url, count, city, now)
        result: dict[str, Any] = {
            "tickets": count,
            "fill_s": round(fill_seconds, 1),
            "indexes_not_in_migrations_yet": created,
        }
        if filled:
            result["reused"] = str(sqlite_file)
        with harness.running_server(harness.server_env(url, var_dir), workers=1) as base:
            staff = logged_in(base, "staff0")
            operator = logged_in(base, "operator0")
            queue: dict[str, Any] = {}
            if only in (None, "queue"):
                first = staff.get("/console/voice")
                first.raise_for_status()
                after = re.search(r'href="/console/voice\?([^"]*after=[^"]*)"', first.text)
                queue = {
                    "department_open": timed(staff, "/console/voice", requests),
                    "department_overdue": timed(staff, "/console/voice?due=overdue", requests),
                    "department_closed": timed(staff, "/console/voice?status=closed", requests),
                }
                if after:
                    queue["department_page_2"] = timed(
                        staff, "/console/voice?" + after.group(1).replace("&amp;", "&"), requests
                    )
                queue["operator_open"] = timed(operator, "/console/voice", requests)
            api = httpx.Client(base_url=base, timeout=60)
            assessment: dict[str, Any] = {}
            result["last_month_city_figures"] = None
            if only in (None, "assessment"):
                operator_key, staff_key = bearer(base, "operator0"), bearer(base, "staff0")
                path = "/api/v1/voice/assessment"
                assessment = {
                    "city_this_month": timed(api, f"{path}?period=month", requests, operator_key),
                    "city_last_month": timed(api, f"{path}?period=last_month", requests, operator_key),
                    "city_this_quarter": timed(api, f"{path}?period=quarter", requests, operator_key),
                    "department_this_month": timed(api, f"{path}?period=month", requests, staff_key),
                }
                figures = api.get(f"{path}?period=last_month", headers=operator_key).json()["city"]
                result["last_month_city_figures"] = figures
            result["queue_page"] = queue
            result["assessment_api"] = assessment
            result["assessment_page_operator"] = (
                timed(operator, "/console/voice/assessment?period=month", max(10, requests // 5))
                if only in (None, "assessment")
                else {}
            )
            for client in (staff, operator, api):
                client.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--postgres", help="an admin URL of a PostgreSQL server: bench there too")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument(
        "--sqlite-file", type=Path, help="a SQLite file to bench in and keep: filled if absent, else reused"
    )
    parser.add_argument("--only", choices=("queue", "assessment"), help="measure only this part")
    args = parser.parse_args()
    backends = [] if args.no_sqlite else ["sqlite"]
    if args.postgres:
        harness.POSTGRES_ADMIN_URL = args.postgres
        backends.append("postgresql")
    results = {
        "benchmark": "voice_queue",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "targets_p95_ms": {"queue_page": 100, "assessment_api": 300},
        "results": {
            backend: bench_backend(backend, args.tickets, args.requests, args.sqlite_file, args.only)
            for backend in backends
        },
    }
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
