"""The demo city's data exchange: a few resources of the demo departments with generated data, loaded and
published — an open register of elderly-care homes, a conditionally shared table of social-insurance
enrolment by district, and an open list of bus stops whose coordinates the public gets coarsened — and
residents' data requests on the board, with their votes and one answer."""

from __future__ import annotations

import csv
import io
from typing import Any

from cityhub.domains.exchange import schemas
from cityhub.domains.exchange.service import catalogue, loads, opening, wishes
from cityhub.domains.exchange.service.access import ADMINISTER
from cityhub.domains.identity import Principal, account_holders, system_principal, units_in_scope
from cityhub.kernel.db import utcnow
from cityhub.kernel.demo import DemoContext

DISTRICT = "district"


def _items(*columns: tuple[str, str, str, bool]) -> list[dict[str, Any]]:
    return [{"name": n, "title": t, "type": kind, "required": required} for n, t, kind, required in columns]


CARE_HOME_ITEMS = _items(
    ("name", "机构名称", "string", True),
    ("district", "区县", "string", True),
    ("beds", "床位数", "integer", True),
    ("meals", "提供助餐", "boolean", False),
)
ENROLMENT_ITEMS = _items(
    ("district", "区县", "string", True),
    ("year", "年份", "integer", True),
    ("insured", "参保人数", "integer", True),
    ("rate", "参保率", "number", False),
)
BUS_STOP_ITEMS = _items(
    ("stop_id", "站点编号", "string", True),
    ("name", "站点名称", "string", True),
    ("lon", "经度", "number", True),
    ("lat", "纬度", "number", True),
)


def seed(ctx: DemoContext) -> None:
    """Seed the exchange (``Domain.demo_seeder``)."""
    task = ctx.progress.add_task("exchange: resources and their data", total=3)
    principal = system_principal(ctx.session, "demo", {ADMINISTER})
    districts = _districts(ctx)
    for body, rows in _resources(ctx, districts):
        resource = catalogue.register(ctx.session, principal, schemas.ResourceIn.model_validate(body))
        loads.load(ctx.session, principal, resource.code, f"{resource.code}.csv", _csv(body, rows))
        catalogue.set_status(ctx.session, principal, resource.code, "published")
        ctx.progress.advance(task)
    # Stops are public places, but three decimals (about 100 m) are all a timetable app needs
    coarse = {"generalise": {axis: {"method": "bucket", "width": 0.001} for axis in ("lon", "lat")}}
    opening.set_rules(ctx.session, principal, "transport-bus-stops", schemas.OpenRules.model_validate(coarse))
    _data_requests(ctx, principal)


WISHES = (
    ("各小区电梯维保记录", "希望公开老旧小区加装电梯的维保和年检记录，方便业主监督。", "dept-housing"),
    (
        "公共充电桩实时空闲情况",
        "开放全市公共充电桩的位置和实时空闲数据，方便新能源车主找桩。",
        "dept-transport",
    ),
    ("学校学位预警信息", "按学区公开各小学的学位余量预警，帮助家长提前规划。", None),
)


def _data_requests(ctx: DemoContext, operator: Principal) -> None:
    """Three residents' data requests with votes from other residents; the transport bureau's is planned."""
    people = [
        Principal("account", account_id, f"account:{account_id}", person.id, ())
        for account_id, person in account_holders(ctx.session, 24)
    ]
    if not people:
        return
    now = utcnow()
    for n, (title, description, department) in enumerate(WISHES):
        body = schemas.WishIn(title=title, description=description, department=department)
        wish = wishes.file(ctx.session, people[n % len(people)], body, now)
        for voter in ctx.rng.sample(people, k=ctx.rng.randrange(len(people) // 3, len(people) + 1)):
            wishes.vote(ctx.session, voter, wish.id)
        if department == "dept-transport":
            answer = schemas.WishAnswerIn(decision="planned", answer="已列入明年开放计划，先开放充电站位置。")
            wishes.answer(ctx.session, operator, wish.id, answer, now)


def _districts(ctx: DemoContext) -> list[str]:
    statement = units_in_scope(["/"])
    statement = statement.where(statement.selected_columns.kind == DISTRICT)
    return [unit.name for unit in ctx.session.scalars(statement.order_by(statement.selected_columns.id))]


def _resources(ctx: DemoContext, districts: list[str]) -> list[tuple[dict[str, Any], list[list[Any]]]]:
    rng = ctx.rng
    year = ctx.today.year - 1
    homes = [
        [f"{district}第{n}养老服务中心", district, rng.randrange(40, 400), rng.random() < 0.6]
        for district in districts
        for n in range(1, rng.randrange(3, 7))
    ]
    insurance = [
        [district, year, rng.randrange(80_000, 600_000), round(rng.uniform(0.92, 0.995), 3)]
        for district in districts
    ]
    stops = [
        [f"S{n:04d}", f"{rng.choice(districts)}{rng.choice(('路口', '公园', '医院', '学校'))}{n}号站",
         round(120.1 + rng.random() * 0.2, 5), round(30.2 + rng.random() * 0.1, 5)]
        for n in range(1, 121)
    ]  # fmt: skip
    return [
        (
            {
                "code": "civil-care-homes", "name": "养老服务机构名录", "name_en": "Elderly-care homes",
                "provider": "dept-civil", "classification": ["社会保障", "养老服务"],
                "summary": "全市养老服务机构的名称、所在区县、床位数和是否提供助餐服务。",
                "data_items": CARE_HOME_ITEMS,
                "sharing_class": "unconditional", "open_class": "open", "update_cycle": "monthly",
                "keywords": ["养老", "助餐"], "licence": "CC-BY-4.0",
            },
            homes,
        ),
        (
            {
                "code": "hrss-insurance-enrolment", "name": "各区基本养老保险参保情况",
                "name_en": "Pension insurance enrolment by district", "provider": "dept-hrss",
                "classification": ["社会保障", "社会保险", "养老保险"],
                "summary": "各区县年度参保人数与参保率。",
                "data_items": ENROLMENT_ITEMS,
                "sharing_class": "conditional", "sharing_condition": "用于社会保障相关业务办理与统计分析",
                "open_class": "closed", "update_cycle": "yearly", "keywords": ["社保", "参保"],
            },
            insurance,
        ),
        (
            {
                "code": "transport-bus-stops", "name": "公交站点", "name_en": "Bus stops",
                "provider": "dept-transport", "classification": ["交通出行", "公共交通"],
                "summary": "公交站点编号、名称与经纬度。",
                "data_items": BUS_STOP_ITEMS,
                "sharing_class": "unconditional", "open_class": "open", "update_cycle": "monthly",
                "keywords": ["公交", "站点"], "licence": "CC-BY-4.0",
            },
            stops,
        ),
    ]  # fmt: skip


def _csv(body: dict[str, Any], rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([item["name"] for item in body["data_items"]])
    writer.writerows(["true" if v is True else "false" if v is False else v for v in row] for row in rows)
    return buffer.getvalue().encode()
