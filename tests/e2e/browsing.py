"""What the browser journeys share: a phone-sized page, logging in through the form, and a server whose
world was built through the JSON API."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect

from cityhub.domains import load_models
from cityhub.domains.identity.service.principals import principal_cache
from cityhub.kernel import ratelimit
from cityhub.kernel.db import Database
from cityhub.kernel.settings import Settings, clear_settings_cache
from tests.e2e.test_resident_journey import PHONE
from tests.factories import PASSWORD
from tests.live_server import CITYHUB, live_server, server_env

World = Callable[[TestClient, Database], object]  # a domain's test world, built through the API


def phone_page(browser: Browser) -> Page:
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    return context.new_page()


def log_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form[action='/login'] button[type=submit]").click()
    expect(page).to_have_url(f"{base_url}/")


@contextmanager
def server_with(tmp: Path, build: World) -> Iterator[str]:
    """A `cityhub serve` on a fresh SQLite database (migrated by the real CLI) holding what ``build`` made;
    its base URL."""
    env = server_env(f"sqlite:///{tmp / 'e2e.db'}", tmp)
    subprocess.run([str(CITYHUB), "migrate"], env=env, check=True, capture_output=True, timeout=120)
    _build_through_the_api(env, build)
    with live_server(env, tmp / "server.log") as url:
        yield url


def _build_through_the_api(env: dict[str, str], build: World) -> None:
    """``build`` with a client of an in-process app on the server's database, before the server starts."""
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
                build(client, database)
    finally:
        principal_cache.clear()
        clear_settings_cache()
        database.dispose()
