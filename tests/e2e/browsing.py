"""What the browser journeys share: a phone-sized page and logging in through the form."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from tests.e2e.test_resident_journey import PHONE
from tests.factories import PASSWORD


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
