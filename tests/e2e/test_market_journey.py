"""The community market in a real browser (Debian's Chromium via Playwright) against a real server process:
a resident finds the shops nearby on the list and the map, opens one, claims a coupon in place (htmx) and
shows its QR code; a clerk of the shop types the code in at the counter, looks it up and redeems it.

The market (a town, an approved merchant with two stores, its owner and clerk, a coupon batch) is built
through the JSON API by the shared test world, in-process on the server's database before it starts.
Screenshots land in test-artifacts/ for a human look.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect

from cityhub.domains import load_models
from cityhub.domains.identity.service.principals import principal_cache
from cityhub.kernel import ratelimit
from cityhub.kernel.db import Database
from cityhub.kernel.settings import Settings, clear_settings_cache
from tests.domains.market.world import build_market, make_batch
from tests.e2e.browsing import log_in, phone_page
from tests.e2e.test_resident_journey import CHROMIUM, _screenshot, _watch_for_breakage, browser
from tests.live_server import CITYHUB, live_server, server_env

pytestmark = pytest.mark.e2e
__all__ = ["browser"]  # the shared Chromium fixture


def _seed(env: dict[str, str]) -> None:
    """The market world, made through the API of an in-process app on the server's database."""
    from cityhub.web import create_app

    load_models()
    database = Database.from_url(env["CITYHUB_DATABASE_URL"])
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                if key.startswith("CITYHUB_"):
                    patch.setenv(key, value)
            patch.setenv("CITYHUB_JOBS__EMBEDDED_WORKER", "false")
            clear_settings_cache()
            settings = Settings()
            ratelimit.reset(settings.rate_limits.storage_uri)  # in-process counters of earlier tests
            principal_cache.clear()  # account ids of earlier tests' databases are reused here
            with TestClient(create_app(settings, database), base_url="http://testserver") as client:
                market = build_market(client, database)
                make_batch(client, market, title="满30减5")
    finally:
        principal_cache.clear()
        clear_settings_cache()
        database.dispose()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("e2e-market")
    env = server_env(f"sqlite:///{tmp / 'e2e.db'}", tmp)
    subprocess.run([str(CITYHUB), "migrate"], env=env, check=True, capture_output=True, timeout=120)
    _seed(env)
    with live_server(env, tmp / "server.log") as url:
        yield url


def test_resident_claims_a_coupon_nearby_and_a_clerk_redeems_it(browser: Browser, base_url: str) -> None:
    assert CHROMIUM.exists()
    resident = phone_page(browser)
    problems = _watch_for_breakage(resident, base_url)
    log_in(resident, base_url, "resident")

    resident.goto(f"{base_url}/market")  # around the resident's home
    shops = resident.locator("#stores")
    expect(shops.locator("li")).to_have_count(2)
    expect(shops.locator("li").first).to_contain_text("面馆一店")
    # the map: the search radius, its centre and a dot per shop
    expect(resident.locator("#market-map path.leaflet-interactive")).to_have_count(4)
    _screenshot(resident, "market-nearby-phone.png")

    shops.get_by_role("link", name="面馆一店").click()
    expect(resident).to_have_url(re.compile(r"/market/stores/\d+$"))
    expect(resident.locator("h1")).to_have_text("面馆一店")
    batch = resident.locator("li.batch", has_text="满30减5")
    expect(batch).to_be_visible()
    batch.locator("button[type=submit]").click()  # htmx swaps the batch in place
    link = resident.locator("li.batch .flash a")
    expect(link).to_be_visible()
    expect(resident).to_have_url(re.compile(r"/market/stores/\d+$"))  # no page load
    _screenshot(resident, "market-store-phone.png")

    link.click()
    expect(resident).to_have_url(re.compile(r"/market/me/coupons/\d{12}$"))
    expect(resident.locator("#coupon-code .qr svg")).to_be_visible()
    code = resident.locator(".coupon-digits").inner_text().replace(" ", "")
    assert re.fullmatch(r"\d{12}", code)
    _screenshot(resident, "market-coupon-phone.png")
    assert not problems, problems

    clerk = phone_page(browser)
    clerk_problems = _watch_for_breakage(clerk, base_url)
    log_in(clerk, base_url, "clerk1")
    clerk.goto(f"{base_url}/market/merchant")
    clerk.locator("a[href$='/scanner']").click()
    expect(clerk).to_have_url(re.compile(r"/market/merchant/\d+/scanner$"))
    clerk.locator("#t-code").fill(code)
    clerk.locator("#look-up button[type=submit]").click()
    redeem = clerk.locator("#coupon form")
    expect(redeem).to_be_visible()
    expect(clerk.locator("#coupon")).to_contain_text("满30减5")
    clerk.locator("#t-amount").fill("40")
    redeem.locator("button[type=submit]").click()
    result = clerk.locator("#till-result")
    expect(result).to_have_class(re.compile(r"\bflash\b"))
    expect(result).to_contain_text("¥5.00")
    _screenshot(clerk, "market-scanner-phone.png")
    assert not clerk_problems, clerk_problems

    resident.goto(f"{base_url}/market/me/coupons/{code}")  # the resident sees it used
    expect(resident.locator("#coupon-code .qr")).to_have_count(0)
