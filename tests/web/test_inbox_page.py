"""The resident's inbox page: unread messages stand out, can be marked read (htmx or plain form), and the
channels of each topic can be chosen."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from cityhub.domains.identity import Notice, notify
from cityhub.domains.identity.models import Account, Notification, NotificationPreference
from cityhub.domains.identity.service import notifications
from cityhub.kernel.db import Database
from cityhub.kernel.i18n import lazy_gettext
from tests.factories import Town, make_user
from tests.web.factories import HTML, Family, csrf_token, post_form

REMINDER = Notice(
    topic="services.appointment.reminder",
    subject=lazy_gettext("Hello, %(name)s"),
    body=lazy_gettext("You have no active consent for %(purpose)s."),
    params={"name": "张三", "purpose": "marketing"},
    link="/services",
)
UNREAD_ITEM = re.compile(r'<li id="notification-(\d+)" class="notice unread">')


def account_id(database: Database, username: str) -> int:
    with database.reading() as session:
        return session.scalars(select(Account.id).where(Account.username == username)).one()


def send(database: Database, username: str, count: int = 1) -> list[int]:
    with database.unit_of_work() as session:
        return [notify(session, account_id(database, username), REMINDER) for _ in range(count)]


def test_the_home_page_leads_to_the_inbox(resident_client: TestClient) -> None:
    assert 'href="/me/inbox"' in resident_client.get("/", headers=HTML).text


def test_the_inbox_lists_messages_with_the_unread_ones_highlighted(
    resident_client: TestClient, database: Database, family: Family
) -> None:
    first, second = send(database, "resident", 2)
    with database.unit_of_work() as session:
        notifications.mark_read(session, account_id(database, "resident"), first)
    page = resident_client.get("/me/inbox", headers=HTML)
    assert page.status_code == 200
    assert "<h1>我的消息</h1>" in page.text and "未读：1" in page.text
    assert "张三，您好" in page.text and "您没有针对 marketing 的有效授权。" in page.text
    assert UNREAD_ITEM.findall(page.text) == [str(second)]
    assert f'<li id="notification-{first}" class="notice">' in page.text
    assert 'href="/services"' in page.text
    unread_only = resident_client.get("/me/inbox?unread=true", headers=HTML).text
    assert f"notification-{second}" in unread_only and f"notification-{first}" not in unread_only


def test_an_empty_inbox_says_so(resident_client: TestClient) -> None:
    page = resident_client.get("/me/inbox", headers=HTML).text
    assert "这里还没有消息。" in page and "全部标为已读" not in page


def test_marking_one_read_with_htmx_swaps_the_item(
    resident_client: TestClient, database: Database, family: Family
) -> None:
    [notification_id] = send(database, "resident")
    page = resident_client.get("/me/inbox", headers=HTML).text
    assert f'hx-post="/me/inbox/{notification_id}/read"' in page
    headers = {"HX-Request": "true", "X-CSRF-Token": csrf_token(page)}
    answer = resident_client.post(f"/me/inbox/{notification_id}/read", headers=headers)
    assert answer.status_code == 200
    assert answer.text.lstrip().startswith(f'<li id="notification-{notification_id}" class="notice">')
    assert "<html" not in answer.text and "hx-post" not in answer.text
    with database.reading() as session:
        assert session.get_one(Notification, notification_id).read_at is not None


def test_marking_read_without_javascript_or_csrf(
    resident_client: TestClient, database: Database, family: Family
) -> None:
    [notification_id] = send(database, "resident")
    refused = resident_client.post(f"/me/inbox/{notification_id}/read", headers=HTML)
    assert refused.status_code == 403
    answer = post_form(resident_client, "/me/inbox", f"/me/inbox/{notification_id}/read", {})
    assert answer.status_code == 303 and answer.headers["location"] == "/me/inbox"
    assert not UNREAD_ITEM.findall(resident_client.get("/me/inbox", headers=HTML).text)


def test_mark_all_read(resident_client: TestClient, database: Database, family: Family) -> None:
    send(database, "resident", 3)
    answer = post_form(resident_client, "/me/inbox", "/me/inbox/read-all", {})
    assert answer.status_code == 303
    page = resident_client.get("/me/inbox", headers=HTML).text
    assert "所有消息均已标为已读。" in page and "未读：0" in page
    assert not UNREAD_ITEM.findall(page)


def test_someone_elses_message_is_not_found(
    resident_client: TestClient, database: Database, town: Town, family: Family
) -> None:
    make_user(database, "neighbour", [("resident", town.community_b)], name="王五")
    [theirs] = send(database, "neighbour")
    token = csrf_token(resident_client.get("/me/inbox", headers=HTML).text)
    answer = resident_client.post(f"/me/inbox/{theirs}/read", data={"csrf_token": token}, headers=HTML)
    assert answer.status_code == 404
    assert "张三，您好" not in resident_client.get("/me/inbox", headers=HTML).text
    with database.reading() as session:
        assert session.get_one(Notification, theirs).read_at is None


def test_choosing_the_channels_of_a_topic(
    resident_client: TestClient, database: Database, family: Family
) -> None:
    send(database, "resident")
    page = resident_client.get("/me/inbox", headers=HTML).text
    assert "全部消息" in page and "<code>services.appointment.reminder</code>" in page
    data = {"topic": "services.appointment.reminder", "webhook": "true"}  # email left unticked
    answer = post_form(resident_client, "/me/inbox", "/me/inbox/preferences", data)
    assert answer.status_code == 303
    with database.reading() as session:
        row = session.scalars(select(NotificationPreference)).one()
        assert (row.topic, row.email, row.webhook) == ("services.appointment.reminder", False, True)
    bad = post_form(resident_client, "/me/inbox", "/me/inbox/preferences", {"topic": "Not a topic!"})
    assert bad.status_code == 422


def test_the_inbox_needs_a_login(client: TestClient, family: Family) -> None:
    answer = client.get("/me/inbox", headers=HTML, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=%2Fme%2Finbox"
