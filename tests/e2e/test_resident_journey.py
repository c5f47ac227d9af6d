"""A resident's journey in a real browser (Debian's Chromium via Playwright) against a real server process:
log in, see the service grid, open the citizen card, switch to English, log out; find a city service by
typing in the search box and keep it as a favourite.

Screenshots land in test-artifacts/ (phone 390x844 and desktop 1280x800) for a human look.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from cityhub.domains import load_models
from cityhub.domains.services.schemas import CatalogueIn
from cityhub.domains.services.service import catalogue
from cityhub.kernel.db import Database
from tests.domains.services.catalogue_data import CATALOGUE
from tests.factories import PASSWORD, build_town
from tests.live_server import CITYHUB, live_server, server_env
from tests.web.factories import seed_family

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def _server_env(tmp: Path) -> dict[str, str]:
    return server_env(f"sqlite:///{tmp / 'e2e.db'}", tmp)


def _seed(env: dict[str, str]) -> None:
    """Migrate with the real CLI, then add a town and the resident's family through the services."""
    subprocess.run([str(CITYHUB), "migrate"], env=env, check=True, capture_output=True, timeout=120)
    load_models()
    database = Database.from_url(env["CITYHUB_DATABASE_URL"])
    try:
        seed_family(database, build_town(database))
        with database.unit_of_work() as session:
            catalogue.import_catalogue(session, "system:e2e", CatalogueIn.model_validate(CATALOGUE))
    finally:
        database.dispose()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("e2e")
    env = _server_env(tmp)
    _seed(env)
    with live_server(env, tmp / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed (make browser)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    opened = context.new_page()
    yield opened
    context.close()


def _watch_for_breakage(page: Page, base_url: str) -> list[str]:
    """Failed requests, error answers from our server and script errors, collected while the page runs."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    page.on(
        "response",
        lambda response: (
            problems.append(f"{response.status}: {response.url}")
            if response.status >= 400 and response.url.startswith(base_url)
            else None
        ),
    )
    return problems


def _screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_resident_logs_in_uses_the_card_switches_language_and_logs_out(page: Page, base_url: str) -> None:
    problems = _watch_for_breakage(page, base_url)

    page.goto(f"{base_url}/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
    expect(page.get_by_role("heading", name="登录")).to_be_visible()
    page.get_by_label("用户名").fill("resident")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()

    expect(page).to_have_url(f"{base_url}/")
    expect(page.get_by_role("heading", name="张三，您好")).to_be_visible()
    tiles = page.locator("ul.tiles > li.tile")
    # card, household, services, inbox, nearby shops, group deals, report, have your say, open data, consents
    expect(tiles).to_have_count(10)
    expect(tiles.first).to_contain_text("我的市民卡")
    _screenshot(page, "home-phone.png")

    tiles.first.get_by_role("link").click()
    expect(page).to_have_url(f"{base_url}/me/card")
    qr = page.locator("#card-code .qr svg")
    expect(qr).to_be_visible()
    countdown = page.locator("[data-countdown]")
    expect(countdown).to_have_text(re.compile(r"^[12]:\d\d$"))
    first_reading = countdown.inner_text()
    expect(countdown).not_to_have_text(first_reading, timeout=5000)  # the script counts down
    _screenshot(page, "card-phone.png")

    old_code = qr.inner_html()
    page.get_by_role("button", name="立即刷新").click()  # htmx swaps a fresh code in
    expect(page.locator("#card-code .qr svg")).not_to_have_js_property("innerHTML", old_code)

    page.get_by_role("button", name="English").click()
    expect(page).to_have_url(f"{base_url}/me/card")
    expect(page.get_by_role("heading", name="My citizen card")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_text("Valid for")).to_be_visible()

    page.set_viewport_size(DESKTOP)
    _screenshot(page, "card-desktop.png")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{base_url}/login")
    expect(page.get_by_text("You have logged out.")).to_be_visible()
    page.goto(f"{base_url}/me/card")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fme%2Fcard$"))

    assert not problems, problems


def test_resident_finds_a_service_by_typing_and_keeps_it_as_a_favourite(page: Page, base_url: str) -> None:
    problems = _watch_for_breakage(page, base_url)
    page.goto(f"{base_url}/login")
    page.get_by_label("用户名").fill("resident")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(f"{base_url}/")

    page.locator("ul.tiles").get_by_role("link", name="城市服务").click()
    expect(page).to_have_url(f"{base_url}/services")
    expect(page.get_by_role("link", name="出入境管理局")).to_be_visible()
    page.get_by_role("search").get_by_role("searchbox").fill("公积金")
    page.get_by_role("search").get_by_role("button").click()
    expect(page).to_have_url(re.compile(r"/services/search\?q="))
    results = page.locator("#results")
    expect(results).to_contain_text("公积金账户余额查询")

    search_box = page.get_by_role("search").get_by_role("searchbox")
    search_box.fill("护照")  # htmx replaces the results as the resident types
    expect(results).to_contain_text("普通护照办理预约")
    expect(results).not_to_contain_text("公积金账户余额查询")
    _screenshot(page, "services-search-phone.png")

    results.get_by_role("link", name="普通护照办理预约").click()
    expect(page).to_have_url(f"{base_url}/services/items/crj-passport")
    page.get_by_role("button", name="加入收藏").click()
    expect(page.get_by_role("button", name="取消收藏")).to_be_visible()

    page.goto(f"{base_url}/services")
    favourites = page.locator("section", has=page.get_by_role("heading", name="我的收藏"))
    expect(favourites).to_contain_text("普通护照办理预约")
    assert not problems, problems
