"""Login, logout, CSRF and the language switch, through the pages as a browser uses them."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from cityhub.domains.identity.models import Account
from cityhub.kernel.db import Database
from tests.factories import PASSWORD
from tests.web.factories import HTML, Family, csrf_token, login, post_form


def test_anonymous_visitor_is_sent_to_login_and_back_afterwards(client: TestClient, family: Family) -> None:
    home = client.get("/me/card", headers=HTML, follow_redirects=False)
    assert home.status_code == 303
    assert home.headers["location"] == "/login?next=%2Fme%2Fcard"

    answer = login(client, "resident", next_path="/me/card")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/me/card"
    assert client.get("/me/card", headers=HTML).status_code == 200


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"]
)
def test_login_never_redirects_off_site(client: TestClient, family: Family, target: str) -> None:
    assert login(client, "resident", next_path=target).headers["location"] == "/"


BAD_CREDENTIALS = "用户名或密码错误，或登录失败次数过多"


def test_wrong_password_shows_the_translated_message_and_keeps_the_username(
    client: TestClient, family: Family
) -> None:
    answer = login(client, "resident", password="not-the-password")
    assert answer.status_code == 401
    assert BAD_CREDENTIALS in answer.text
    assert 'name="username" type="text" value="resident"' in answer.text
    assert "WWW-Authenticate" not in answer.headers


def test_a_locked_account_gets_the_same_answer_even_with_the_right_password(
    client: TestClient, database: Database, family: Family
) -> None:
    statuses = [login(client, "resident", password="wrong-pass").status_code for _ in range(5)]
    assert statuses == [401] * 5
    locked = login(client, "resident")
    assert locked.status_code == 401  # no tell that the guess was right
    assert BAD_CREDENTIALS in locked.text
    with database.reading() as session:
        account = session.scalar(select(Account).where(Account.username == "resident"))
        assert account is not None and account.locked_until is not None


def test_login_attempts_are_rate_limited_per_client(client: TestClient, family: Family) -> None:
    statuses = [login(client, f"ghost{i}", password="whatever1").status_code for i in range(11)]
    assert statuses == [401] * 10 + [429]


def test_login_rotates_the_session_id_and_so_the_csrf_token(client: TestClient, family: Family) -> None:
    before = csrf_token(client.get("/login", headers=HTML).text)
    login(client, "resident")
    after = csrf_token(client.get("/", headers=HTML).text)
    assert before != after


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/login", {"username": "resident", "password": PASSWORD}),
        ("/logout", {}),
        ("/locale", {"locale": "en"}),
        ("/me/card/revoke", {}),
    ],
)
def test_unsafe_requests_without_the_csrf_token_are_refused(
    resident_client: TestClient, path: str, data: dict[str, str]
) -> None:
    for token in (None, "0" * 64):
        form = data if token is None else {**data, "csrf_token": token}
        answer = resident_client.post(path, data=form, headers=HTML, follow_redirects=False)
        assert answer.status_code == 403
        assert "表单已过期或并非来自本站" in answer.text
        assert answer.headers["content-type"].startswith("text/html")


def test_logout_ends_the_page_session(resident_client: TestClient) -> None:
    answer = post_form(resident_client, "/", "/logout", {})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    assert "您已安全退出。" in resident_client.get("/login", headers=HTML).text
    assert resident_client.get("/", headers=HTML, follow_redirects=False).status_code == 303


def test_language_switch_remembers_english_and_returns_to_the_page(
    resident_client: TestClient, database: Database
) -> None:
    assert "我的市民卡" in resident_client.get("/", headers=HTML).text
    answer = post_form(resident_client, "/", "/locale", {"locale": "en", "next": "/me/household"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/me/household"
    assert "cityhub_locale=en" in answer.headers["set-cookie"]
    english = resident_client.get("/", headers=HTML).text
    assert '<html lang="en">' in english
    assert "My citizen card" in english and "我的市民卡" not in english
    with database.reading() as session:  # notifications to this account are now written in English
        assert session.scalar(select(Account.locale).where(Account.username == "resident")) == "en"


def test_language_switch_ignores_unknown_locales_and_foreign_targets(resident_client: TestClient) -> None:
    answer = post_form(resident_client, "/", "/locale", {"locale": "xx", "next": "https://evil.example/"})
    assert answer.headers["location"] == "/"
    assert "set-cookie" not in answer.headers


def test_a_disabled_account_loses_its_page_session(resident_client: TestClient, database: Database) -> None:
    with database.unit_of_work() as session:
        session.execute(update(Account).where(Account.username == "resident").values(is_active=False))
    assert resident_client.get("/", headers=HTML, follow_redirects=False).status_code == 303
