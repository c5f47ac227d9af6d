"""Page-test helpers: a family to show, logins through the real form, and CSRF tokens from rendered pages.

The territory and users come from tests.factories (built through the identity services).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi.testclient import TestClient
from httpx import Response

from cityhub.domains.identity.models import Person
from cityhub.domains.identity.service import people
from cityhub.kernel.db import Database
from tests.factories import PASSWORD, Town, make_user

HTML = {"Accept": "text/html"}
CSRF_FIELD = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
ID_NUMBER_BASE = "11010519491231002"  # 17 digits; the check digit is computed


@dataclass
class Family:
    resident: Person  # the head of household_a, with an account "resident"
    spouse: Person
    grandmother: Person  # looked after by the resident (guardian link)


def id_number(base: str = ID_NUMBER_BASE) -> str:
    """A resident identity number with a valid GB 11643 check digit."""
    total = sum(int(digit) * weight for digit, weight in zip(base, people.ID_WEIGHTS, strict=True))
    return base + people.ID_CHECK_CHARS[total % 11]


def masked_id_number() -> str:
    """How the resident's id number appears on pages (the service decides how much to hide)."""
    return people.mask_id_number(id_number())


def seed_family(database: Database, town: Town) -> Family:
    """Account "resident" (张三, verified, with an id number) living in household_a with a spouse, caring for
    a grandmother elsewhere."""
    _account, resident = make_user(
        database, "resident", [("resident", town.community_a)], household=town.household_a
    )
    with database.unit_of_work() as session:
        resident = session.merge(resident)
        people.set_id_number(session, resident, id_number(), "salt")
        spouse = people.create_person(session, people.PersonInput(name="李四", gender="F"), "salt")
        people.add_to_household(session, session.merge(town.household_a), spouse, "spouse")
        grandmother = people.create_person(session, people.PersonInput(name="王秀英", gender="F"), "salt")
        people.link_family(session, resident, grandmother, "guardian")
        return Family(resident, spouse, grandmother)


def csrf_token(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD, next_path: str = "/") -> Response:
    """Log in through the form, as a browser does (GET the form for its CSRF token, then POST it)."""
    form = client.get(f"/login?next={next_path}", headers=HTML)
    return client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "next": next_path,
            "csrf_token": csrf_token(form.text),
        },
        headers=HTML,
        follow_redirects=False,
    )


def post_form(client: TestClient, page: str, action: str, data: dict[str, str]) -> Response:
    """Submit a form found on ``page`` with that page's CSRF token."""
    token = csrf_token(client.get(page, headers=HTML).text)
    return client.post(action, data={**data, "csrf_token": token}, headers=HTML, follow_redirects=False)


def as_user(client: TestClient, username: str | None) -> None:
    """Start over as ``username`` (anonymous for None), reading the pages in English (so that assertions
    hold before and after translations arrive)."""
    client.cookies.clear()
    client.cookies.set("cityhub_locale", "en")
    if username is not None:
        assert login(client, username).status_code == 303


def page_of(client: TestClient, url: str) -> Response:
    page = client.get(url, headers=HTML)
    assert page.status_code == 200, page.text
    return page
