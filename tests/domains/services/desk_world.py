"""A small world for the services transaction tests: two departments tied to identity organisations, a
query, an appointment and a bill item, residents with verified id numbers, department staff and a
department system's API key — all made through the real services (no raw inserts of business rows)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.domains.identity import Grant, Principal
from cityhub.domains.identity.models import Account
from cityhub.domains.identity.service import apikeys, people
from cityhub.domains.identity.service.accounts import principal_for_account
from cityhub.domains.identity.settings import IdentitySettings
from cityhub.domains.services.models import Item, Slot
from cityhub.kernel.db import Database, utcnow
from cityhub.kernel.settings import domain_settings
from tests.domains.services.catalogue_data import item, text
from tests.factories import Town, bearer, build_town, make_department, make_user
from tests.web.factories import id_number

API = "/api/v1/services"
RESIDENT_ID = id_number("11010519491231002")
NEIGHBOUR_ID = id_number("33010619800101123")
STRANGER_ID = id_number("44030519900505456")  # nobody registered has it

CATALOGUE: dict[str, Any] = {
    "departments": [
        {"code": "gjj", "name": text("公积金中心", "Provident Fund Centre"), "organization_code": "org-gjj"},
        {"code": "crj", "name": text("出入境管理局", "Exit-Entry"), "organization_code": "org-crj"},
    ],
    "categories": [{"code": "housing", "name": text("住房", "Housing")}],
    "items": [
        item(
            "gjj-deposits",
            "gjj",
            "housing",
            "query",
            "公积金缴存明细",
            "Fund deposits",
            fields=[
                {"key": "amount", "label": text("金额", "Amount"), "type": "money"},
                {"key": "employer", "label": text("单位", "Employer")},
            ],
        ),
        item("gjj-counter", "gjj", "housing", "appointment", "公积金柜台预约", "Fund counter visit"),
        item("gjj-repayment", "gjj", "housing", "bill", "公积金贷款还款", "Fund loan repayment"),
        item("crj-passport", "crj", "housing", "appointment", "护照预约", "Passport appointment"),
        item(
            "gjj-withdraw",
            "gjj",
            "housing",
            "form",
            "租房提取公积金",
            "Withdraw the fund to pay rent",
            fields=[
                {"key": "name", "label": text("姓名", "Name"), "required": True, "prefill": "name"},
                {"key": "phone", "label": text("电话", "Phone"), "prefill": "phone"},
                {
                    "key": "reason",
                    "label": text("提取原因", "Reason"),
                    "type": "choice",
                    "required": True,
                    "options": [
                        {"value": "rent", "label": text("租房", "Rent")},
                        {"value": "purchase", "label": text("购房", "Purchase")},
                    ],
                },
                {"key": "amount", "label": text("提取金额", "Amount"), "type": "money", "required": True},
                {"key": "since", "label": text("租期开始", "Lease start"), "type": "date"},
                {"key": "first_home", "label": text("无自有住房", "No home of my own"), "type": "boolean"},
                {"key": "contract", "label": text("租房合同", "Lease"), "type": "file", "required": True},
                {"key": "remarks", "label": text("备注", "Remarks"), "type": "textarea"},
            ],
        ),
    ],
}


@dataclass
class World:
    town: Town
    operator: dict[str, str]
    resident: dict[str, str]
    neighbour: dict[str, str]
    gjj_staff: dict[str, str]
    crj_staff: dict[str, str]
    gjj_key: dict[str, str]


def _resident(database: Database, town: Town, username: str, number: str) -> None:
    _account, person = make_user(
        database, username, [("resident", town.community_a)], household=town.household_a
    )
    with database.unit_of_work() as session:
        key = domain_settings(IdentitySettings).id_number_key
        people.set_id_number(session, session.merge(person), number, key)


def _department_key(database: Database, town: Town, organization_id: int) -> str:
    creator = Principal(
        "system",
        0,
        "tests",
        None,
        (
            Grant(
                "operator",
                town.city.id,
                town.city.path,
                None,
                frozenset({"services.desk.manage", "identity.apikeys.manage"}),
            ),
        ),
    )
    with database.unit_of_work() as session:
        _key, secret = apikeys.create_key(
            session,
            creator,
            name="fund centre system",
            permissions=["services.desk.manage"],
            org_unit=session.merge(town.city),
            organization_id=organization_id,
        )
    return secret


def build_world(client: TestClient, database: Database) -> World:
    town = build_town(database)
    gjj, crj = make_department(database, town, "org-gjj"), make_department(database, town, "org-crj")
    make_user(database, "operator1", [("operator", town.city)])
    operator = bearer(client, "operator1")
    response = client.post(f"{API}/catalogue", json=CATALOGUE, headers=operator)
    assert response.status_code == 200, response.text
    _resident(database, town, "resident", RESIDENT_ID)
    _resident(database, town, "neighbour", NEIGHBOUR_ID)
    make_user(database, "gjj_staff", [("department_staff", town.city)], organization_id=gjj)
    make_user(database, "crj_staff", [("department_staff", town.city)], organization_id=crj)
    return World(
        town=town,
        operator=operator,
        resident=bearer(client, "resident"),
        neighbour=bearer(client, "neighbour"),
        gjj_staff=bearer(client, "gjj_staff"),
        crj_staff=bearer(client, "crj_staff"),
        gjj_key={"X-API-Key": _department_key(database, town, gjj)},
    )


def add_slots(
    database: Database, item_code: str, count: int, capacity: int, ahead: timedelta = timedelta(days=1)
) -> list[int]:
    """``count`` half-hour slots of an item, the first starting ``ahead`` of now (tests of booking do not
    depend on the holiday calendar's coverage of future years)."""
    start = utcnow().replace(microsecond=0) + ahead
    with database.unit_of_work() as session:
        item_id = session.query(Item.id).filter(Item.code == item_code).scalar()
        slots = [
            Slot(
                item_id=item_id,
                starts_at=start + timedelta(minutes=30 * n),
                ends_at=start + timedelta(minutes=30 * (n + 1)),
                capacity=capacity,
            )
            for n in range(count)
        ]
        session.add_all(slots)
        session.flush()
        return [slot.id for slot in slots]


def principal_of(session: Session, username: str) -> Principal:
    return principal_for_account(
        session, session.scalars(select(Account.id).where(Account.username == username)).one()
    )
