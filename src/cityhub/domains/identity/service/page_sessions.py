"""Server-side records of signed-in browsers, so that logout really ends a session."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cityhub.domains.identity.models import PageSession
from cityhub.domains.identity.service.principals import forget_after_commit
from cityhub.kernel.db import utcnow


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(session: Session, account_id: int, hours: int) -> str:
    """A new session token for the cookie (256 random bits)."""
    token = secrets.token_urlsafe(32)
    session.add(
        PageSession(
            token_hash=_hash(token), account_id=account_id, expires_at=utcnow() + timedelta(hours=hours)
        )
    )
    return token


def is_live(session: Session, account_id: int, token: str) -> bool:
    expires_at = session.scalar(
        select(PageSession.expires_at).where(
            PageSession.token_hash == _hash(token),
            PageSession.account_id == account_id,
            PageSession.revoked_at.is_(None),
        )
    )
    return expires_at is not None and expires_at > utcnow()


def end(session: Session, account_id: int, token: str) -> None:
    session.execute(
        update(PageSession)
        .where(PageSession.token_hash == _hash(token), PageSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    forget_after_commit(session, "account", account_id)


def end_all(session: Session, account_id: int) -> None:
    """Every browser of the account is signed out (password change, disabled account)."""
    session.execute(
        update(PageSession)
        .where(PageSession.account_id == account_id, PageSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    forget_after_commit(session, "account", account_id)
