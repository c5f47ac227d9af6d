"""The context hub console in a real browser: the operator of the tiny demo city opens it, sees the entities
as markers on the Leaflet map, follows an air-quality station from the list and sees its ECharts history.

Screenshots land in test-artifacts/ (context-console-phone.png, context-entity-desktop.png).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from cityhub.kernel.demo import DEMO_PASSWORD
from tests.e2e.test_resident_journey import (
    DESKTOP,
    _screenshot,
    _server_env,
    _watch_for_breakage,
    browser,
    page,
)
from tests.live_server import CITYHUB, live_server

pytestmark = pytest.mark.e2e
__all__ = ["browser", "page"]  # fixtures shared with the resident journey


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server on the tiny demo city, seeded with the real CLI."""
    tmp = tmp_path_factory.mktemp("e2e-context")
    env = _server_env(tmp)
    for command in (["migrate"], ["demo", "--size", "tiny", "--seed", "7"]):
        subprocess.run([str(CITYHUB), *command], env=env, check=True, capture_output=True, timeout=180)
    with live_server(env, tmp / "server.log") as url:
        yield url


def test_operator_sees_the_entities_on_the_map_and_a_station_history(page: Page, demo_url: str) -> None:
    problems = _watch_for_breakage(page, demo_url)
    page.goto(f"{demo_url}/console/context")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fconsole%2Fcontext$"))
    page.get_by_label("用户名").fill("operator")
    page.get_by_label("密码").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="登录").click()

    expect(page.get_by_role("heading", name="城市数据中枢")).to_be_visible()
    markers = page.locator("#context-map path.leaflet-interactive")
    expect(markers.first).to_be_attached()
    assert markers.count() > 10
    _screenshot(page, "context-console-phone.png")

    page.get_by_role("link", name=re.compile(r"^AirQualityObserved")).click()
    expect(page.locator("#context-map")).to_have_attribute("data-loaded", "1")
    page.get_by_role("link", name=re.compile("空气质量监测站")).first.click()
    expect(page.get_by_role("heading", name=re.compile("空气质量监测站"))).to_be_visible()
    charts = page.locator("#context-charts .context-chart svg")
    expect(charts.first).to_be_visible()
    assert page.locator("#context-charts .context-chart[data-attribute='pm25']").count() == 1
    page.set_viewport_size(DESKTOP)
    _screenshot(page, "context-entity-desktop.png")
    assert not problems, problems
