"""The 12345 journey in a real browser (Debian's Chromium via Playwright) against a real server process: a
resident reports a problem with a pin on the map and sees it dispatched; a member of the department's staff
signs for it and answers from the console; the resident rates the answer. And participation: a resident
makes a proposal, a neighbour supports it in place (htmx) and comments.

Screenshots land in test-artifacts/ for a human look.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from cityhub.domains import load_models
from cityhub.domains.identity import system_principal
from cityhub.domains.voice import schemas
from cityhub.domains.voice.service import categories
from cityhub.kernel.db import Database
from tests.domains.voice.hotline import TREE
from tests.e2e.browsing import log_in, phone_page
from tests.e2e.test_resident_journey import CHROMIUM, _screenshot, _watch_for_breakage, browser
from tests.factories import build_town, make_department, make_user
from tests.live_server import CITYHUB, live_server, server_env

pytestmark = pytest.mark.e2e
__all__ = ["browser"]  # the shared Chromium fixture


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("e2e-voice")
    env = server_env(f"sqlite:///{tmp / 'e2e.db'}", tmp)
    subprocess.run([str(CITYHUB), "migrate"], env=env, check=True, capture_output=True, timeout=120)
    load_models()
    database = Database.from_url(env["CITYHUB_DATABASE_URL"])
    try:
        town = build_town(database)
        housing = make_department(database, town, "org-housing")
        make_department(database, town, "org-police")
        make_user(database, "resident", [("resident", town.community_a)], household=town.household_a)
        make_user(database, "housing1", [("department_staff", town.city)], organization_id=housing)
        make_user(database, "neighbour", [("resident", town.community_b)], name="李四")
        with database.unit_of_work() as session:
            root = system_principal(session, "e2e", [categories.MANAGE])
            categories.import_categories(session, root, schemas.CategoriesIn.model_validate(TREE))
    finally:
        database.dispose()
    with live_server(env, tmp / "server.log") as url:
        yield url


def test_report_on_the_map_department_answers_resident_rates(browser: Browser, base_url: str) -> None:
    assert CHROMIUM.exists()
    resident = phone_page(browser)
    problems = _watch_for_breakage(resident, base_url)
    log_in(resident, base_url, "resident")
    resident.goto(f"{base_url}/voice/report")
    resident.locator("select[name=type]").select_option("complaint")
    resident.locator("select[name=category]").select_option("01.01")
    resident.locator("textarea[name=description]").fill("小区电梯停运三天了，老人上下楼很困难。")
    resident.locator("input[name=address]").fill("楼a")
    resident.locator("#voice-map").click()  # the pin
    expect(resident.locator("#v-lon")).not_to_have_value("")
    expect(resident.locator(".leaflet-marker-icon")).to_be_visible()
    resident.wait_for_load_state("networkidle")  # the suggestions asked for while typing have come back
    _screenshot(resident, "voice-report-phone.png")
    resident.locator("form[action='/voice/report'] > button[type=submit]").click()

    expect(resident).to_have_url(re.compile(r"/voice/tickets/\d+$"))
    number = resident.url.rsplit("/", 1)[1]
    expect(resident.locator(".badge").first).to_have_text("已派单")
    expect(resident.get_by_text("小区电梯停运三天了")).to_be_visible()

    staff = phone_page(browser)
    staff_problems = _watch_for_breakage(staff, base_url)
    log_in(staff, base_url, "housing1")
    staff.goto(f"{base_url}/console/voice")
    expect(staff.locator("tr", has_text=number)).to_be_visible()
    staff.get_by_role("link", name=number).click()
    expect(staff).to_have_url(f"{base_url}/console/voice/tickets/{number}")
    staff.locator(f"form[action='/console/voice/tickets/{number}/sign'] button").click()
    staff.locator("textarea[name=text]").fill("已联系物业，电梯今天下午恢复运行。")
    _screenshot(staff, "voice-console-ticket-phone.png")
    staff.locator(f"form[action='/console/voice/tickets/{number}/reply'] button").click()
    expect(staff.get_by_text("已联系物业，电梯今天下午恢复运行。").first).to_be_visible()

    resident.reload()
    expect(resident.get_by_text("电梯今天下午恢复运行").first).to_be_visible()
    resident.locator("input[name=level][value='5']").check()
    resident.locator(f"form[action='/voice/tickets/{number}/callback'] button[type=submit]").click()
    expect(resident.get_by_text("您的评价：5 分")).to_be_visible()
    _screenshot(resident, "voice-rated-phone.png")
    assert not problems, problems
    assert not staff_problems, staff_problems


def test_a_proposal_is_made_supported_in_place_and_commented(browser: Browser, base_url: str) -> None:
    author = phone_page(browser)
    problems = _watch_for_breakage(author, base_url)
    log_in(author, base_url, "resident")
    author.goto(f"{base_url}/voice/participate")
    author.get_by_role("link", name="我要提议").click()
    author.locator("input[name=title]").fill("滨江步道加装路灯")
    author.locator("textarea[name=body]").fill("滨江步道晚上太暗，散步和夜跑都不安全，建议加装节能路灯。")
    author.locator("form[action='/voice/proposals'] button[type=submit]").click()
    expect(author).to_have_url(re.compile(r"/voice/proposals/\d+$"))
    link = author.url.removeprefix(base_url)

    neighbour = phone_page(browser)
    neighbour_problems = _watch_for_breakage(neighbour, base_url)
    log_in(neighbour, base_url, "neighbour")
    neighbour.goto(f"{base_url}{link}")
    expect(neighbour.locator("#support-box")).to_contain_text("0 / 100")
    neighbour.get_by_role("button", name="支持", exact=True).click()
    expect(neighbour.locator("#support-box")).to_contain_text("1 / 100")  # swapped in place by htmx
    expect(neighbour.get_by_role("button", name="收回支持")).to_be_visible()
    assert neighbour.url.endswith(link)  # no page load
    neighbour.locator("textarea[name=body]").fill("支持！晚上带孩子散步确实太黑了。")
    neighbour.locator(f"form[action='{link}/comments'] button[type=submit]").click()
    expect(neighbour.get_by_text("支持！晚上带孩子散步确实太黑了。")).to_be_visible()
    _screenshot(neighbour, "voice-proposal-phone.png")

    author.reload()
    expect(author.locator("body")).to_contain_text("1 / 100")
    assert not problems, problems
    assert not neighbour_problems, neighbour_problems
