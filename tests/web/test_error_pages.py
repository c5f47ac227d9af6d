"""Errors on pages are HTML pages in the visitor's language; the API keeps answering problem+json."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.web.factories import HTML


def test_unknown_pages_get_a_translated_html_error_page(resident_client: TestClient) -> None:
    answer = resident_client.get("/no-such-page", headers=HTML)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "未找到" in answer.text and "返回首页" in answer.text


def test_an_unexpected_failure_still_renders_the_error_page(app: FastAPI) -> None:
    def broken() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/broken-page", broken, include_in_schema=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/broken-page", headers={**HTML, "Accept-Language": "en"})
    assert answer.status_code == 500
    assert answer.headers["content-type"].startswith("text/html")
    assert "Internal error" in answer.text and "boom" not in answer.text


def test_api_errors_stay_problem_json_even_for_browsers(client: TestClient) -> None:
    answer = client.get("/api/v1/identity/me", headers=HTML)
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
