"""The community market in a real browser (Debian's Chromium via Playwright) against a real server process:
a resident finds the shops nearby on the list and the map, opens one, claims a coupon in place (htmx) and
shows its QR code; a clerk of the shop types the code in at the counter, looks it up and redeems it.

The market (a town, an approved merchant with two stores, its owner and clerk, a coupon batch) is built
through the JSON API by the shared test world, in-process on the server's database before it starts.
Screenshots land in test-artifacts/ for a human look.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect

from cityhub.kernel.db import Database
from tests.domains.market.world import build_market, make_batch
from tests.e2e.browsing import log_in, phone_page, server_with
from tests.e2e.test_resident_journey import CHROMIUM, _screenshot, _watch_for_breakage, browser

pytestmark = pytest.mark.e2e
__all__ = ["browser"]  # the shared Chromium fixture


def _seed(client: TestClient, database: Database) -> None:
    """The market world, made through the API of an in-process app on the server's database."""
    market = build_market(client, database)
    make_batch(client, market, title="满30减5")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with server_with(tmp_path_factory.mktemp("e2e-market"), _seed) as url:
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
