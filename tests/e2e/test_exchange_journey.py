"""The data exchange in a real browser (Debian's Chromium via Playwright) against a real server process: a
civil affairs clerk finds the statistics bureau's conditionally shared resource and asks for three of its
fields; a statistics clerk approves two of them; the civil affairs clerk downloads the CSV file through the
grant, and it holds the two granted columns only.

The exchange (a town, three departments with a clerk each, the published resource with its data) is built
through the JSON API by the shared test world before the server starts. The pages are in Chinese, so the
steps find elements by their ids and names, not their words. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect

from cityhub.kernel.db import Database
from tests.domains.exchange.world import build_exchange, published
from tests.e2e.browsing import log_in, phone_page, server_with
from tests.e2e.test_resident_journey import CHROMIUM, _screenshot, _watch_for_breakage, browser

pytestmark = pytest.mark.e2e
__all__ = ["browser"]  # the shared Chromium fixture

CODE = "stats-population"  # conditionally shared: 区县, 年份, 常住人口, 老年人口占比, 调查日期
ASKED = ("district", "year", "population")
GRANTED = ["district", "population"]


def _exchange(client: TestClient, database: Database) -> None:
    published(client, build_exchange(client, database), CODE)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with server_with(tmp_path_factory.mktemp("e2e-exchange"), _exchange) as url:
        yield url


def _console(page: Page, base_url: str) -> None:
    """From the home page's console tile to the data exchange console."""
    page.goto(f"{base_url}/")
    page.locator("a[href='/console/exchange']").click()
    expect(page).to_have_url(f"{base_url}/console/exchange")


def test_a_department_asks_the_owner_approves_fewer_fields_and_the_csv_has_only_those(
    browser: Browser, base_url: str
) -> None:
    assert CHROMIUM.exists()
    consumer = phone_page(browser)
    problems = _watch_for_breakage(consumer, base_url)
    log_in(consumer, base_url, "civil1")
    _console(consumer, base_url)
    consumer.locator("a[href='/console/exchange/catalogue']").click()
    consumer.locator(f"#resource-{CODE} a[href$='/request']").click()
    expect(consumer).to_have_url(f"{base_url}/console/exchange/resources/{CODE}/request")
    form = consumer.locator("#request-form")
    form.locator("#r-purpose").fill("养老服务规划")
    for field in ASKED:
        form.locator(f"input[name=fields][value={field}]").check()
    form.locator("#r-days").fill("30")
    _screenshot(consumer, "exchange-request-phone.png")
    form.locator("button[type=submit]").click()
    expect(consumer).to_have_url(f"{base_url}/console/exchange#asked")
    expect(consumer.locator("#asked tbody tr")).to_have_count(1)
    expect(consumer.locator("#asked tbody")).to_contain_text("年份")
    expect(consumer.locator("#held a[download]")).to_have_count(0)  # nothing granted yet

    owner = phone_page(browser)
    owner_problems = _watch_for_breakage(owner, base_url)
    log_in(owner, base_url, "stats1")
    _console(owner, base_url)
    request = owner.locator("#to-answer .request")
    expect(request).to_have_count(1)
    expect(request.locator("input[name=fields]:checked")).to_have_count(len(ASKED))
    request.locator("input[name=fields][value=year]").uncheck()
    _screenshot(owner, "exchange-answer-phone.png")
    request.locator("button[name=decision][value=approve]").click()
    expect(owner).to_have_url(f"{base_url}/console/exchange#to-answer")
    expect(owner.locator("#to-answer .request")).to_have_count(0)
    given = owner.locator("#given tbody tr")
    expect(given).to_have_count(1)
    expect(given).to_contain_text("常住人口")
    expect(given).not_to_contain_text("年份")
    assert not owner_problems, owner_problems

    consumer.reload()
    download_link = consumer.locator("#held a[download]")
    expect(download_link).to_have_attribute("href", re.compile(r"^/console/exchange/grants/\d+\.csv$"))
    _screenshot(consumer, "exchange-grants-phone.png")
    with consumer.expect_download() as started:
        download_link.click()
    path = started.value.path()
    rows = list(csv.reader(io.StringIO(Path(path).read_text(encoding="utf-8-sig"))))
    assert rows[0] == GRANTED
    assert [row[0] for row in rows[1:]] == ["西湖区", "滨江区", "上城区"]
    assert not problems, problems
