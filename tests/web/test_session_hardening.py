"""Page sessions end on the server; audited reads refuse cross-site links; private pages are not cached."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.web.factories import csrf_token, post_form


def test_a_copied_cookie_is_useless_after_logout(resident_client: TestClient) -> None:
    stolen = dict(resident_client.cookies)
    assert resident_client.get("/me/card").status_code == 200
    assert post_form(resident_client, "/", "/logout", {}).status_code == 303
    resident_client.cookies.clear()
    resident_client.cookies.update(stolen)
    replayed = resident_client.get("/me/card", follow_redirects=False)
    assert replayed.status_code in (302, 303, 307)
    assert replayed.headers["location"].startswith("/login")


def test_audited_reads_refuse_cross_site_navigation(operator_client: TestClient) -> None:
    cross = operator_client.get("/admin/people?q=x", headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    same = operator_client.get("/admin/people?q=x", headers={"Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 200


def test_signed_in_pages_are_never_cached(resident_client: TestClient) -> None:
    assert resident_client.get("/me/card").headers["cache-control"] == "no-store"
    page = resident_client.get("/")
    assert page.headers["cache-control"] == "no-store"
    assert csrf_token(page.text)
