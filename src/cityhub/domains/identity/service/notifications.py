"""Notifications to an account: an inbox that is always on, plus email and a webhook by preference.

Another domain builds a :class:`Notice` from lazy strings (``lazy_gettext``, so the text is translated when
sent, into the *recipient's* language) and calls :func:`notify` in its own transaction: the inbox row and the
delivery jobs commit or roll back together with the change that caused them. Email and webhook deliveries are
jobs (``identity.notifications.email``, ``identity.notifications.webhook``; see ``identity.jobs``), so a slow
or broken receiver never holds up the caller and is retried with backoff.

Preferences are per account and topic. A row may name a topic (``services.appointment.reminder``), a family
of topics (``services.*``) or every topic (``*``); the most specific row wins and, without any, every channel
is on.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

from babel.support import LazyProxy
from sqlalchemy import CursorResult, Select, delete, func, select, update
from sqlalchemy.orm import Session

from cityhub.domains.identity.models import (
    Account,
    Notification,
    NotificationPreference,
    NotificationWebhook,
    Person,
)
from cityhub.kernel import audit
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.i18n import normalize_locale, translate_in
from cityhub.kernel.jobs import enqueue
from cityhub.kernel.outbound import BlockedAddress, check_host

EMAIL_JOB = "identity.notifications.email"
WEBHOOK_JOB = "identity.notifications.webhook"
ALL_TOPICS = "*"
MAX_TOPIC = 100
MAX_SUBJECT = 200
MAX_BODY = 10_000
MAX_LINK = 500
MAX_WEBHOOK_URL = 2000
TOPIC_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
WEBHOOK_SCHEMES = ("http", "https")
SECRET_PREFIX = "whsec_"  # noqa: S105 - marks a webhook secret when it turns up in a log or a paste

Param = str | int | float


@dataclass(frozen=True)
class Notice:
    """What to tell someone: a topic code, a subject and a body as lazy translatable strings whose
    ``%(name)s`` variables come from ``params``, and an optional link to a page of this site."""

    topic: str
    subject: LazyProxy
    body: LazyProxy
    params: Mapping[str, Param] = field(default_factory=dict)
    link: str | None = None

    def __post_init__(self) -> None:
        # A bad notice is a bug in the calling domain: fail where it is built, not in a job later.
        if not is_topic(self.topic):
            raise ValueError(f"notice topic must be a dotted lowercase code of <= {MAX_TOPIC} characters")
        if not isinstance(self.subject, LazyProxy) or not isinstance(self.body, LazyProxy):
            raise TypeError("notice subject and body must be lazy_gettext strings")
        if any(not isinstance(value, Param) for value in self.params.values()):
            raise TypeError("notice params must be strings or numbers")
        if self.link is not None and not is_site_path(self.link):
            raise ValueError("notice link must be a path of this site, such as /services/items/7")


@dataclass(frozen=True)
class Channels:
    """Whether a notice goes out by email and by webhook besides the inbox."""

    email: bool = True
    webhook: bool = True


def is_topic(topic: str) -> bool:
    return len(topic) <= MAX_TOPIC and TOPIC_PATTERN.match(topic) is not None


def is_preference_topic(topic: str) -> bool:
    """A topic, a family of topics (``services.*``) or every topic (``*``)."""
    family = topic.removesuffix(".*")
    return topic == ALL_TOPICS or (len(topic) <= MAX_TOPIC and is_topic(family))


def is_site_path(link: str) -> bool:
    """A path of this site: no scheme, host, protocol-relative ``//`` or control characters."""
    if len(link) > MAX_LINK or not link.startswith("/") or link.startswith(("//", "/\\")):
        return False
    parts = urlsplit(link)
    return not parts.scheme and not parts.netloc and not any(ord(char) < 32 for char in link)


# --- sending -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Recipient:
    locale: str
    email: str | None
    has_webhook: bool


def notify(session: Session, account_id: int, notice: Notice) -> int:
    """Put the notice in the account's inbox, in the account's language, and queue its email and webhook
    deliveries as the account's preferences say, all in the caller's transaction; the inbox row's id."""
    recipient = _recipient(session, account_id)
    subject, body = render_notice(notice, recipient.locale)
    row = Notification(
        account_id=account_id,
        topic=notice.topic,
        locale=recipient.locale,
        subject=subject,
        body=body,
        link=notice.link,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    channels = channels_for(session, account_id, notice.topic)
    payload = {"notification_id": row.id}
    if channels.email and recipient.email:
        enqueue(session, EMAIL_JOB, payload, dedupe_key=f"{EMAIL_JOB}:{row.id}")
    if channels.webhook and recipient.has_webhook:
        enqueue(session, WEBHOOK_JOB, payload, dedupe_key=f"{WEBHOOK_JOB}:{row.id}")
    return row.id


def render_notice(notice: Notice, locale: str) -> tuple[str, str]:
    """The notice's subject (one line) and body in ``locale``."""
    try:
        subject = translate_in(locale, notice.subject, notice.params)
        body = translate_in(locale, notice.body, notice.params)
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"notice {notice.topic}: its {locale} text does not fit its params ({exc})") from exc
    return _clip(" ".join(subject.split()), MAX_SUBJECT), _clip(body, MAX_BODY)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _recipient(session: Session, account_id: int) -> _Recipient:
    row = session.execute(
        select(Account.locale, Person.email, NotificationWebhook.id)
        .join(Person, Person.id == Account.person_id)
        .outerjoin(NotificationWebhook, NotificationWebhook.account_id == Account.id)
        .where(Account.id == account_id)
    ).first()
    if row is None:
        raise NotFound(_("Account %(id)s does not exist.", id=account_id))
    locale, email, webhook_id = row
    return _Recipient(normalize_locale(locale), (email or "").strip() or None, webhook_id is not None)


# --- preferences ---------------------------------------------------------------------------------------


def topic_patterns(topic: str) -> list[str]:
    """The preference topics that cover ``topic``, most specific first: a.b.c, a.b.*, a.*, *."""
    parts = topic.split(".")
    families = [".".join(parts[:size]) + ".*" for size in range(len(parts) - 1, 0, -1)]
    return [topic, *families, ALL_TOPICS]


def channels_for(session: Session, account_id: int, topic: str) -> Channels:
    patterns = topic_patterns(topic)
    rows = session.scalars(
        select(NotificationPreference).where(
            NotificationPreference.account_id == account_id, NotificationPreference.topic.in_(patterns)
        )
    )
    by_topic = {row.topic: row for row in rows}
    for pattern in patterns:
        if pattern in by_topic:
            return Channels(email=by_topic[pattern].email, webhook=by_topic[pattern].webhook)
    return Channels()


def preferences(session: Session, account_id: int) -> list[NotificationPreference]:
    statement = select(NotificationPreference).where(NotificationPreference.account_id == account_id)
    return list(session.scalars(statement.order_by(NotificationPreference.topic)))


def _check_preference_topic(topic: str) -> None:
    if not is_preference_topic(topic):
        raise ValidationProblem(
            _(
                "A topic is a lowercase dotted code of at most %(count)s characters, such as "
                "services.appointment.reminder, a family such as services.*, or * for all.",
                count=MAX_TOPIC,
            ),
            field="topic",
        )


def set_preference(
    session: Session, account_id: int, topic: str, *, email: bool, webhook: bool
) -> NotificationPreference:
    _check_preference_topic(topic)
    row = session.scalar(
        select(NotificationPreference).where(
            NotificationPreference.account_id == account_id, NotificationPreference.topic == topic
        )
    )
    if row is None:
        row = NotificationPreference(account_id=account_id, topic=topic)
        session.add(row)
    row.email, row.webhook, row.updated_at = email, webhook, utcnow()
    session.flush()
    return row


def remove_preference(session: Session, account_id: int, topic: str) -> bool:
    """Back to what the wider topics say; whether there was a row."""
    _check_preference_topic(topic)
    result = session.execute(
        delete(NotificationPreference).where(
            NotificationPreference.account_id == account_id, NotificationPreference.topic == topic
        )
    )
    return _rowcount(result) > 0


# --- the inbox -----------------------------------------------------------------------------------------


def inbox(account_id: int, *, unread_only: bool = False) -> Select[Notification]:
    """The account's notifications, newest first."""
    statement = select(Notification).where(Notification.account_id == account_id)
    if unread_only:
        statement = statement.where(Notification.read_at.is_(None))
    return statement.order_by(Notification.id.desc())


def unread_count(session: Session, account_id: int) -> int:
    statement = select(func.count()).where(
        Notification.account_id == account_id, Notification.read_at.is_(None)
    )
    return session.scalar(statement) or 0


def recent_topics(session: Session, account_id: int, limit: int = 20) -> list[str]:
    """Topics the account has received, most recent first: what a preferences form offers."""
    newest = func.max(Notification.id)
    statement = (
        select(Notification.topic)
        .where(Notification.account_id == account_id)
        .group_by(Notification.topic)
        .order_by(newest.desc())
        .limit(limit)
    )
    return list(session.scalars(statement))


def get_notification(session: Session, account_id: int, notification_id: int) -> Notification:
    """One of the account's own notifications; someone else's is as missing as one that never existed."""
    row = session.get(Notification, notification_id)
    if row is None or row.account_id != account_id:
        raise NotFound(_("Notification %(id)s does not exist.", id=notification_id))
    return row


def mark_read(session: Session, account_id: int, notification_id: int) -> Notification:
    row = get_notification(session, account_id, notification_id)
    if row.read_at is None:
        row.read_at = utcnow()
    return row


def mark_all_read(session: Session, account_id: int) -> int:
    """Mark every unread notification of the account read; how many."""
    result = session.execute(
        update(Notification)
        .where(Notification.account_id == account_id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


def _rowcount(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount


# --- the webhook ---------------------------------------------------------------------------------------


def get_webhook(session: Session, account_id: int) -> NotificationWebhook | None:
    return session.scalar(select(NotificationWebhook).where(NotificationWebhook.account_id == account_id))


def check_webhook_url(url: str, blocked_networks: list[str]) -> str:
    """The URL, stripped, if the platform may POST to it; else a 422 problem saying why."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if (
        parts is None
        or len(url) > MAX_WEBHOOK_URL
        or parts.scheme not in WEBHOOK_SCHEMES
        or not parts.hostname
        or parts.username is not None
        or any(ord(char) <= 32 for char in url)
    ):
        raise ValidationProblem(
            _("Give an http:// or https:// address without a user name or spaces."), field="url"
        )
    try:
        check_host(parts.hostname, port, blocked_networks)
    except BlockedAddress:
        raise ValidationProblem(_("The platform does not send to that address."), field="url") from None
    return url


def set_webhook(
    session: Session, account_id: int, url: str, *, actor: str, blocked_networks: list[str]
) -> tuple[NotificationWebhook, str]:
    """Point the account's webhook at ``url`` with a new signing secret; the row and the secret, which the
    caller shows once (setting the webhook again is how a secret is rotated)."""
    url = check_webhook_url(url, blocked_networks)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    hook = get_webhook(session, account_id)
    if hook is None:
        hook = NotificationWebhook(account_id=account_id)
        session.add(hook)
    hook.url, hook.secret, hook.created_at = url, secret, utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="identity.webhook.set",
        object_type="account",
        object_id=str(account_id),
        details={"host": urlsplit(url).hostname},  # not the URL: its path or query may hold a token
    )
    return hook, secret


def remove_webhook(session: Session, account_id: int, *, actor: str) -> bool:
    """Stop webhook deliveries (queued ones are dropped when they run); whether there was a webhook."""
    hook = get_webhook(session, account_id)
    if hook is None:
        return False
    session.delete(hook)
    audit.record(
        session,
        actor=actor,
        action="identity.webhook.removed",
        object_type="account",
        object_id=str(account_id),
    )
    return True
