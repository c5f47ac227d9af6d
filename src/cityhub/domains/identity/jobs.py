"""Queued jobs of the identity domain: delivering notifications by email (SMTP) and by webhook (HTTP POST).

Each job carries only the notification's id and reads what to send when it runs, in a short read of its own:
the job's session is a write transaction (``BEGIN IMMEDIATE`` on SQLite), which must not stay open while a
mail server or a receiver takes its time. A failure raises, so the queue retries with backoff. Deliveries are
at least once: a receiver may see one notification twice and tells by its id (the webhook body's ``id``, the
email's ``Message-ID``).

Webhook signature: ``X-Cityhub-Signature: sha256=<hex>``, the HMAC-SHA256 keyed by the webhook's secret of
``<X-Cityhub-Timestamp>.<raw body>``; receivers recompute it and refuse old timestamps (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, cast
from urllib.parse import urljoin

import httpx
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cityhub.domains.identity.models import Account, Notification, NotificationWebhook, Person
from cityhub.domains.identity.settings import IdentitySettings
from cityhub.kernel.jobs import JobContext
from cityhub.kernel.outbound import BlockedAddress, check_host
from cityhub.kernel.settings import domain_settings

log = logging.getLogger("cityhub.identity.notifications")

SIGNATURE_HEADER = "X-Cityhub-Signature"
TIMESTAMP_HEADER = "X-Cityhub-Timestamp"
USER_AGENT = "cityhub-notifications/1"
MAX_REASON = 300


class DeliveryFailed(Exception):
    """The receiver did not take the notification; the job is retried."""


# --- email ---------------------------------------------------------------------------------------------


def send_email(ctx: JobContext) -> None:
    """Job ``identity.notifications.email``: mail one notification to the account holder's address."""
    smtp = domain_settings(IdentitySettings)
    notification_id = int(ctx.payload["notification_id"])
    if not smtp.smtp_host:
        log.info("email is off (no CITYHUB_IDENTITY__SMTP_HOST); notification %s not mailed", notification_id)
        return
    with _reading(ctx) as session:
        found = _email_of(session, notification_id)
    if found is None:
        log.info("notification %s or its email address is gone; nothing to mail", notification_id)
        return
    notification, address = found
    message = build_email(notification, address, sender=smtp.smtp_from, base_url=ctx.settings.base_url)
    _submit(smtp, message)


def build_email(notification: Notification, address: str, *, sender: str, base_url: str) -> EmailMessage:
    """A plain-text UTF-8 message; the subject is RFC 2047-encoded, so Chinese arrives intact."""
    message = EmailMessage()
    message["Subject"] = notification.subject
    message["From"] = sender
    message["To"] = address
    message["Date"] = formatdate(notification.created_at.timestamp(), usegmt=True)
    # Stable per notification, so a mail sent twice (a retry after a lost answer) can be recognised.
    message["Message-ID"] = f"<notification-{notification.id}@{_domain_of(sender)}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies, please
    text = notification.body
    if notification.link:
        text += "\n\n" + urljoin(base_url, notification.link)
    message.set_content(text + "\n")
    message["Content-Language"] = notification.locale.replace("_", "-")  # after: set_content resets Content-*
    return message


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip(" >") or "localhost"


def _submit(smtp: IdentitySettings, message: EmailMessage) -> None:
    assert smtp.smtp_host is not None
    with smtplib.SMTP(smtp.smtp_host, smtp.smtp_port, timeout=smtp.smtp_timeout_seconds) as client:
        if smtp.smtp_starttls:
            client.starttls(context=ssl.create_default_context())
        if smtp.smtp_username:
            password = smtp.smtp_password.get_secret_value() if smtp.smtp_password else ""
            client.login(smtp.smtp_username, password)
        try:
            client.send_message(message)
        except smtplib.SMTPRecipientsRefused as refused:
            if all(code >= 500 for code, _reason in refused.recipients.values()):
                # A permanent refusal (no such mailbox): retrying cannot help, and the inbox has the text.
                log.warning("the mail server refused %s for good: %s", message["To"], refused.recipients)
                return
            raise


def _email_of(session: Session, notification_id: int) -> tuple[Notification, str] | None:
    row = session.execute(
        select(Notification, Person.email)
        .join(Account, Account.id == Notification.account_id)
        .join(Person, Person.id == Account.person_id)
        .where(Notification.id == notification_id)
    ).first()
    address = (row[1] or "").strip() if row else ""
    return (row[0], address) if row and address else None


# --- webhook -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    url: str
    content: bytes
    headers: dict[str, str]


def send_webhook(ctx: JobContext) -> None:
    """Job ``identity.notifications.webhook``: POST one notification, signed, to the account's webhook."""
    notification_id = int(ctx.payload["notification_id"])
    with _reading(ctx) as session:
        found = _webhook_of(session, notification_id)
    if found is None:
        log.info("notification %s or its webhook is gone; nothing to send", notification_id)
        return
    notification, hook = found
    delivery = build_delivery(notification, hook, base_url=ctx.settings.base_url)
    timeout = domain_settings(IdentitySettings).webhook_timeout_seconds
    post(delivery, timeout=timeout, blocked_networks=ctx.settings.outbound_blocked_networks)


def webhook_body(notification: Notification, base_url: str) -> bytes:
    document = {
        "id": notification.id,
        "topic": notification.topic,
        "subject": notification.subject,
        "body": notification.body,
        "link": notification.link,
        "url": urljoin(base_url, notification.link) if notification.link else None,
        "created_at": notification.created_at.isoformat(),
        "locale": notification.locale,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def sign(secret: str, timestamp: str, content: bytes) -> str:
    """The hex HMAC-SHA256 of ``<timestamp>.<content>``: covering the time stops an old delivery from
    being replayed later with its valid signature."""
    signed = timestamp.encode() + b"." + content
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def build_delivery(
    notification: Notification, hook: NotificationWebhook, *, base_url: str, now: float | None = None
) -> Delivery:
    content = webhook_body(notification, base_url)
    timestamp = str(int(now if now is not None else time.time()))
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: "sha256=" + sign(hook.secret, timestamp, content),
    }
    return Delivery(hook.url, content, headers)


def post(delivery: Delivery, *, timeout: float, blocked_networks: list[str]) -> None:
    """POST or raise DeliveryFailed. Redirects are not followed: a receiver could bounce the request to an
    address the platform must not call."""

    def check_address(request: httpx.Request) -> None:
        check_host(request.url.host, request.url.port, blocked_networks)

    hooks: dict[str, list[Any]] = {"request": [check_address]}
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, event_hooks=hooks) as client:
            response = client.post(delivery.url, content=delivery.content, headers=delivery.headers)
    except BlockedAddress as exc:
        raise DeliveryFailed(str(exc)) from None
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}"[:MAX_REASON]) from None
    if not response.is_success:
        # The status only: the receiver's body is none of the job log's business.
        raise DeliveryFailed(f"HTTP {response.status_code} from the webhook")


def _webhook_of(session: Session, notification_id: int) -> tuple[Notification, NotificationWebhook] | None:
    row = session.execute(
        select(Notification, NotificationWebhook)
        .join(NotificationWebhook, NotificationWebhook.account_id == Notification.account_id)
        .where(Notification.id == notification_id)
    ).first()
    return (row[0], row[1]) if row else None


@contextmanager
def _reading(ctx: JobContext) -> Iterator[Session]:
    """A read transaction beside the job's own (see the module docstring for why)."""
    engine = cast(Engine, ctx.session.get_bind())
    reader = Session(engine.execution_options(cityhub_write=False), expire_on_commit=False)
    with reader as session, session.begin():
        yield session
