"""Notifications: the inbox in the recipient's language, channel preferences, email through a real SMTP
server (aiosmtpd), signed webhooks to a real HTTP server, retries, and the /me API's answers to bad input."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from cityhub.domains.identity import Notice, notify
from cityhub.domains.identity.jobs import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from cityhub.domains.identity.manifest import MANIFEST
from cityhub.domains.identity.models import Account, Notification, Person
from cityhub.domains.identity.service import notifications
from cityhub.kernel import jobs
from cityhub.kernel.db import Database, utcnow
from cityhub.kernel.domain import resolve
from cityhub.kernel.i18n import get_locale, lazy_gettext, set_locale
from cityhub.kernel.models import AuditRecord, Job
from cityhub.kernel.settings import Settings, clear_settings_cache
from tests.factories import bearer, make_user

API = "/api/v1/identity"
ADDRESS = "zhang.san@example.cn"
# Messages the catalogue already translates, so the test needs no strings of its own.
GREETING = Notice(
    topic="services.appointment.reminder",
    subject=lazy_gettext("Hello, %(name)s"),
    body=lazy_gettext("You have no active consent for %(purpose)s."),
    params={"name": "张三", "purpose": "marketing"},
    link="/me/inbox",
)


# --- helpers -------------------------------------------------------------------------------------------


def resident(
    database: Database, username: str = "zhang", *, locale: str | None = None, mail: bool = True
) -> int:
    account, person = make_user(database, username, [])
    with database.unit_of_work() as session:
        session.get_one(Account, account.id).locale = locale
        session.get_one(Person, person.id).email = ADDRESS if mail else None
    return account.id


def send(database: Database, account_id: int, notice: Notice = GREETING) -> int:
    with database.unit_of_work() as session:
        return notify(session, account_id, notice)


def queued(database: Database) -> list[tuple[str, str | None]]:
    with database.reading() as session:
        return [(job.name, job.dedupe_key) for job in session.scalars(select(Job).order_by(Job.id))]


def the_job(database: Database, name: str) -> Job:
    with database.reading() as session:
        return session.scalars(select(Job).where(Job.name == name)).one()


def identity_jobs() -> jobs.JobRegistry:
    """The handlers exactly as the identity manifest declares them."""
    registry = jobs.JobRegistry()
    for name, reference in MANIFEST.job_handlers.items():
        registry.add(name, resolve(reference))
    return registry


def run_jobs(database: Database, settings: Settings) -> int:
    ran = 0
    while jobs.run_next(database, identity_jobs(), settings, "test-worker"):
        ran += 1
    return ran


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps what it receives."""

    envelopes: list[Any] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def message(self) -> EmailMessage:
        [envelope] = self.envelopes
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@pytest.fixture
def smtp_server(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Iterator[Mailbox]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("CITYHUB_IDENTITY__SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CITYHUB_IDENTITY__SMTP_PORT", str(port))
    monkeypatch.setenv("CITYHUB_IDENTITY__SMTP_FROM", "滨江市民服务 <noreply@cityhub.test>")
    clear_settings_cache()
    yield mailbox
    controller.stop()


@dataclass
class Receiver:
    """A webhook receiver on a real socket; answers ``status`` and keeps each request."""

    url: str = ""
    status: int = 204
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    received = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(received.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    received.url = f"http://127.0.0.1:{server.server_port}/hooks/cityhub?box=7"
    yield received
    server.shutdown()
    server.server_close()


def set_webhook(database: Database, account_id: int, url: str) -> str:
    with database.unit_of_work() as session:
        _hook, secret = notifications.set_webhook(
            session, account_id, url, actor=f"account:{account_id}", blocked_networks=[]
        )
    return secret


# --- the notice and the inbox --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"topic": "Services Reminder"}, ValueError),
        ({"topic": "a." * 60 + "b"}, ValueError),
        ({"link": "https://evil.example/phish"}, ValueError),
        ({"link": "//evil.example/phish"}, ValueError),
        ({"subject": "plain text"}, TypeError),
        ({"params": {"name": ["not", "a", "string"]}}, TypeError),
    ],
)
def test_a_bad_notice_fails_where_it_is_built(changes: dict[str, Any], error: type[Exception]) -> None:
    fields = {"topic": "a.b", "subject": lazy_gettext("Hello"), "body": lazy_gettext("Hello"), **changes}
    with pytest.raises(error):
        Notice(**fields)


def test_the_inbox_speaks_each_recipients_language(database: Database, settings: Settings) -> None:
    chinese = resident(database, "zhang")
    english = resident(database, "smith", locale="en")
    set_locale("en")  # the caller's own language must neither leak into nor be changed by the notices
    try:
        ids = [send(database, chinese), send(database, english)]
        assert get_locale() == "en"
    finally:
        set_locale("zh_CN")
    with database.reading() as session:
        rows = [session.get_one(Notification, notification_id) for notification_id in ids]
        assert [(row.locale, row.subject, row.body) for row in rows] == [
            ("zh_CN", "张三，您好", "您没有针对 marketing 的有效授权。"),
            ("en", "Hello, 张三", "You have no active consent for marketing."),
        ]
        assert {(row.topic, row.link, row.read_at) for row in rows} == {
            ("services.appointment.reminder", "/me/inbox", None)
        }


def test_notify_in_a_rolled_back_transaction_leaves_nothing(database: Database, settings: Settings) -> None:
    account_id = resident(database)

    def failing_change() -> None:
        with database.unit_of_work() as session:
            notify(session, account_id, GREETING)
            raise RuntimeError("the caller's change failed")

    with pytest.raises(RuntimeError):
        failing_change()
    with database.reading() as session:
        assert session.scalars(select(Notification)).all() == []
    assert queued(database) == []


# --- preferences ---------------------------------------------------------------------------------------


def test_without_preferences_every_channel_is_queued_once(database: Database, settings: Settings) -> None:
    account_id = resident(database)
    set_webhook(database, account_id, "https://receiver.example/hook")
    notification_id = send(database, account_id)
    assert queued(database) == [
        ("identity.notifications.email", f"identity.notifications.email:{notification_id}"),
        ("identity.notifications.webhook", f"identity.notifications.webhook:{notification_id}"),
    ]


def test_no_address_and_no_webhook_means_inbox_only(database: Database, settings: Settings) -> None:
    send(database, resident(database, mail=False))
    assert queued(database) == []


def test_preferences_choose_the_channels_most_specific_first(database: Database, settings: Settings) -> None:
    account_id = resident(database)
    set_webhook(database, account_id, "https://receiver.example/hook")
    with database.unit_of_work() as session:
        notifications.set_preference(session, account_id, "*", email=False, webhook=True)
        notifications.set_preference(session, account_id, "services.*", email=True, webhook=False)
        notifications.set_preference(session, account_id, "services.bill.due", email=False, webhook=False)
    cases = {
        "voice.ticket.answered": ["identity.notifications.webhook"],  # "*": email off
        "services.appointment.reminder": ["identity.notifications.email"],  # "services.*"
        "services.bill.due": [],  # its own row
    }
    for topic, expected in cases.items():
        with database.unit_of_work() as session:
            session.execute(delete(Job))
            notify(session, account_id, Notice(topic, GREETING.subject, GREETING.body, GREETING.params))
        assert [name for name, _key in queued(database)] == expected, topic


# --- email ---------------------------------------------------------------------------------------------


def test_an_email_with_a_chinese_subject_reaches_the_smtp_server(
    database: Database, settings: Settings, smtp_server: Mailbox
) -> None:
    account_id = resident(database)
    notification_id = send(database, account_id)
    assert run_jobs(database, settings) == 1
    assert the_job(database, "identity.notifications.email").status == jobs.DONE
    [envelope] = smtp_server.envelopes
    assert envelope.rcpt_tos == [ADDRESS]
    assert envelope.mail_from == "noreply@cityhub.test"
    message = smtp_server.message()
    assert message["Subject"] == "张三，您好"
    assert message["From"].addresses[0].display_name == "滨江市民服务"
    assert message["To"] == ADDRESS
    assert message["Message-ID"] == f"<notification-{notification_id}@cityhub.test>"
    assert message["Content-Language"] == "zh-CN"
    content = message.get_content()
    assert "您没有针对 marketing 的有效授权。" in content
    assert f"{settings.base_url}/me/inbox" in content


def test_email_preference_off_sends_no_email(
    database: Database, settings: Settings, smtp_server: Mailbox
) -> None:
    account_id = resident(database)
    with database.unit_of_work() as session:
        notifications.set_preference(session, account_id, GREETING.topic, email=False, webhook=True)
    send(database, account_id)
    assert queued(database) == []
    assert run_jobs(database, settings) == 0
    assert smtp_server.envelopes == []


def test_without_an_smtp_host_the_email_job_finishes_quietly(database: Database, settings: Settings) -> None:
    send(database, resident(database))
    assert run_jobs(database, settings) == 1
    assert the_job(database, "identity.notifications.email").status == jobs.DONE


def test_an_unreachable_smtp_server_is_retried(
    database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CITYHUB_IDENTITY__SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CITYHUB_IDENTITY__SMTP_PORT", str(free_port()))  # nobody listens
    clear_settings_cache()
    send(database, resident(database))
    assert run_jobs(database, settings) == 1
    job = the_job(database, "identity.notifications.email")
    assert (job.status, job.attempts) == (jobs.QUEUED, 1)
    assert job.last_error and "ConnectionRefusedError" in job.last_error


# --- webhook -------------------------------------------------------------------------------------------


def test_a_webhook_delivery_is_signed_and_verifiable(
    client: TestClient, database: Database, settings: Settings, receiver: Receiver
) -> None:
    account_id = resident(database)
    headers = bearer(client, "zhang")
    answer = client.put(f"{API}/me/webhook", headers=headers, json={"url": receiver.url})
    assert answer.status_code == 200, answer.text
    secret = answer.json()["secret"]
    assert secret.startswith("whsec_") and answer.json()["url"] == receiver.url
    assert "secret" not in client.get(f"{API}/me/webhook", headers=headers).json()
    with database.unit_of_work() as session:
        notifications.set_preference(session, account_id, "*", email=False, webhook=True)
    notification_id = send(database, account_id)

    assert run_jobs(database, settings) == 1
    [(received_headers, body)] = receiver.requests
    timestamp = received_headers[TIMESTAMP_HEADER.lower()]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert received_headers[SIGNATURE_HEADER.lower()] == f"sha256={expected}"
    assert abs(int(timestamp) - utcnow().timestamp()) < 60
    document = json.loads(body)
    assert document["id"] == notification_id and document["subject"] == "张三，您好"
    assert (document["topic"], document["locale"], document["link"]) == (GREETING.topic, "zh_CN", "/me/inbox")
    assert document["url"] == f"{settings.base_url}/me/inbox" and document["created_at"]
    assert the_job(database, "identity.notifications.webhook").status == jobs.DONE
    with database.reading() as session:
        actions = session.scalars(select(AuditRecord.action)).all()
        assert "identity.webhook.set" in actions
        assert receiver.url not in json.dumps([r.details for r in session.scalars(select(AuditRecord))])


def test_the_signature_covers_the_timestamp() -> None:
    body = b'{"id":1}'
    assert sign("whsec_x", "1700000000", body) != sign("whsec_x", "1700000001", body)
    assert sign("whsec_x", "1700000000", body) != sign("whsec_y", "1700000000", body)


@pytest.mark.parametrize("status", [500, 404, 302])
def test_a_failing_webhook_is_retried_with_backoff(
    database: Database, settings: Settings, receiver: Receiver, status: int
) -> None:
    receiver.status = status
    account_id = resident(database, mail=False)
    set_webhook(database, account_id, receiver.url)
    send(database, account_id)
    before = utcnow()
    assert run_jobs(database, settings) == 1
    job = the_job(database, "identity.notifications.webhook")
    assert (job.status, job.attempts) == (jobs.QUEUED, 1)
    assert job.last_error and f"HTTP {status}" in job.last_error
    assert job.run_at >= before + timedelta(seconds=4)
    assert len(receiver.requests) == 1

    receiver.status = 200  # the receiver recovers: the next attempt, once due, succeeds
    later = utcnow() + timedelta(seconds=10)
    assert jobs.run_next(database, identity_jobs(), settings, "test-worker", now=later)
    assert the_job(database, "identity.notifications.webhook").status == jobs.DONE


def test_a_webhook_into_a_blocked_network_is_not_called(
    database: Database, settings: Settings, receiver: Receiver
) -> None:
    account_id = resident(database, mail=False)
    set_webhook(database, account_id, receiver.url)  # allowed when it was set...
    send(database, account_id)
    strict = settings.model_copy(update={"outbound_blocked_networks": ["127.0.0.0/8"]})
    assert run_jobs(database, strict) == 1  # ...but the platform checks again at each delivery
    job = the_job(database, "identity.notifications.webhook")
    assert job.status == jobs.QUEUED and job.last_error and "does not call" in job.last_error
    assert receiver.requests == []


def test_a_removed_webhook_drops_queued_deliveries(
    database: Database, settings: Settings, receiver: Receiver
) -> None:
    account_id = resident(database, mail=False)
    set_webhook(database, account_id, receiver.url)
    send(database, account_id)
    with database.unit_of_work() as session:
        assert notifications.remove_webhook(session, account_id, actor="system")
    assert run_jobs(database, settings) == 1
    assert the_job(database, "identity.notifications.webhook").status == jobs.DONE
    assert receiver.requests == []


# --- the /me API ---------------------------------------------------------------------------------------


def test_my_inbox_pages_filters_and_marks_read(
    client: TestClient, database: Database, settings: Settings
) -> None:
    account_id = resident(database)
    ids = [send(database, account_id) for _ in range(3)]
    headers = bearer(client, "zhang")

    page = client.get(f"{API}/me/notifications?limit=2", headers=headers).json()
    assert [item["id"] for item in page["items"]] == [ids[2], ids[1]]
    assert (page["total"], page["unread"], page["limit"], page["offset"]) == (3, 3, 2, 0)

    read = client.post(f"{API}/me/notifications/{ids[0]}/read", headers=headers)
    assert read.status_code == 200 and read.json()["read_at"] is not None
    again = client.post(f"{API}/me/notifications/{ids[0]}/read", headers=headers)
    assert again.json()["read_at"] == read.json()["read_at"]  # reading twice keeps the first time

    unread = client.get(f"{API}/me/notifications?unread=true", headers=headers).json()
    assert [item["id"] for item in unread["items"]] == [ids[2], ids[1]] and unread["unread"] == 2
    assert client.post(f"{API}/me/notifications/read-all", headers=headers).json() == {"marked": 2}
    after = client.get(f"{API}/me/notifications?unread=true", headers=headers).json()
    assert (after["items"], after["total"], after["unread"]) == ([], 0, 0)


def test_someone_elses_notification_is_not_found(
    client: TestClient, database: Database, settings: Settings
) -> None:
    theirs = send(database, resident(database, "zhang"))
    resident(database, "lisi")
    headers = bearer(client, "lisi")
    for answer in (
        client.post(f"{API}/me/notifications/{theirs}/read", headers=headers),
        client.post(f"{API}/me/notifications/{theirs + 1000}/read", headers=headers),
    ):
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
    assert client.get(f"{API}/me/notifications", headers=headers).json()["total"] == 0
    with database.reading() as session:
        assert session.get_one(Notification, theirs).read_at is None


def test_notifications_need_a_login(client: TestClient, database: Database, settings: Settings) -> None:
    assert client.get(f"{API}/me/notifications").status_code == 401
    assert client.put(f"{API}/me/webhook", json={"url": "https://x.example/"}).status_code == 401


def test_preferences_through_the_api(client: TestClient, database: Database, settings: Settings) -> None:
    resident(database)
    headers = bearer(client, "zhang")
    assert client.get(f"{API}/me/notification-preferences", headers=headers).json() == []
    for topic in ("*", "services.*", "services.bill.due"):
        answer = client.put(
            f"{API}/me/notification-preferences/{topic}", headers=headers, json={"email": False}
        )
        assert answer.status_code == 200, answer.text
        assert (answer.json()["topic"], answer.json()["email"], answer.json()["webhook"]) == (
            topic,
            False,
            True,
        )
    listed = client.get(f"{API}/me/notification-preferences", headers=headers).json()
    assert [row["topic"] for row in listed] == ["*", "services.*", "services.bill.due"]
    assert client.delete(f"{API}/me/notification-preferences/services.*", headers=headers).status_code == 204
    assert client.delete(f"{API}/me/notification-preferences/services.*", headers=headers).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("post", "/me/notifications/abc/read", None, 422),
        ("post", "/me/notifications/0/read", None, 422),
        ("post", f"/me/notifications/{2**70}/read", None, 422),
        ("post", "/me/notifications/424242/read", None, 404),
        ("put", "/me/notification-preferences/" + "a" * 101, {"email": True}, 422),
        ("put", "/me/notification-preferences/Not A Topic", {"email": True}, 422),
        ("put", "/me/notification-preferences/services..x", {"email": True}, 422),
        ("put", "/me/notification-preferences/services.*.*", {"email": True}, 422),
        ("put", "/me/notification-preferences/services.x", {"email": "maybe"}, 422),
        ("put", "/me/notification-preferences/services.x", [], 422),
        ("delete", "/me/notification-preferences/%2A%2A", None, 422),
        ("put", "/me/webhook", {"url": "ftp://files.example/in"}, 422),
        ("put", "/me/webhook", {"url": "not a url"}, 422),
        ("put", "/me/webhook", {"url": "https://user:pw@hooks.example/"}, 422),
        ("put", "/me/webhook", {"url": "http://[::1"}, 422),
        ("put", "/me/webhook", {"url": "http://hooks.example:99999/"}, 422),
        ("put", "/me/webhook", {"url": "http://169.254.169.254/latest/meta-data"}, 422),
        ("put", "/me/webhook", {"url": "https://" + "a" * 2000 + ".example/"}, 422),
        ("put", "/me/webhook", {}, 422),
        ("delete", "/me/webhook", None, 404),
        ("get", "/me/webhook", None, 404),
        ("get", "/me/notifications?limit=0", None, 422),
        ("get", "/me/notifications?unread=perhaps", None, 422),
    ],
)
def test_bad_input_is_a_problem_never_a_500(
    client: TestClient,
    database: Database,
    settings: Settings,
    method: str,
    path: str,
    body: Any,
    status: int,
) -> None:
    resident(database)
    headers = bearer(client, "zhang")
    answer = client.request(method.upper(), API + path, headers=headers, json=body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
