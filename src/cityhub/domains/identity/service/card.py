"""The digital citizen card: a short-lived Ed25519-signed token (a JWT with alg EdDSA) shown as a QR code.

Anyone holding the public key verifies signature and expiry offline; revocation ("I lost my phone") needs
the database, so online checks also refuse tokens issued before the person's ``card_valid_after``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.orm import Session

from cityhub.domains.identity.models import Person
from cityhub.domains.identity.service.people import mask_name
from cityhub.domains.identity.settings import IdentitySettings
from cityhub.kernel import audit
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.security import load_or_create_ed25519
from cityhub.kernel.settings import Settings, domain_settings

CARD_TYPE = "citizen-card"
CARD_ISSUER = "cityhub"
CARD_ALGORITHM = "EdDSA"


@dataclass(frozen=True)
class IssuedCard:
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class CardCheck:
    """The outcome of verifying a card token; ``reason`` is a stable code, ``message`` its translation."""

    valid: bool
    reason: str
    message: str
    person_id: int | None = None
    name_masked: str | None = None
    verification_level: int | None = None
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    revocation_checked: bool = False


def key_path(settings: Settings, identity: IdentitySettings) -> Path:
    return identity.card_key_file or settings.var_dir / "keys" / "card-ed25519.pem"


@cache
def _load_key(path: Path, create: bool) -> Ed25519PrivateKey:
    return load_or_create_ed25519(path, create)


def signing_key(settings: Settings, identity: IdentitySettings) -> Ed25519PrivateKey:
    """The card signing key; created on first use outside production, required in production."""
    return _load_key(key_path(settings, identity).resolve(), settings.relaxed)


def issue_card(person: Person, key: Ed25519PrivateKey, lifetime_seconds: int) -> IssuedCard:
    now = utcnow()
    expires_at = now + timedelta(seconds=lifetime_seconds)
    claims: dict[str, Any] = {
        "iss": CARD_ISSUER,
        "typ": CARD_TYPE,
        "sub": str(person.id),
        "name": mask_name(person.name),
        "lvl": person.verification_level,
        "iat": now.timestamp(),
        "exp": int(expires_at.timestamp()),
    }
    return IssuedCard(jwt.encode(claims, key, algorithm=CARD_ALGORITHM), expires_at)


def verify_card(token: str, public_key: Ed25519PublicKey, session: Session | None = None) -> CardCheck:
    """Check signature, type and expiry offline; with a session also that the card was not revoked."""
    try:
        claims = jwt.decode(
            token.strip(),
            public_key,
            algorithms=[CARD_ALGORITHM],
            issuer=CARD_ISSUER,
            options={"require": ["exp", "iat", "sub", "typ"]},
        )
    except jwt.ExpiredSignatureError:
        return CardCheck(False, "expired", _("This card code has expired; ask for a fresh one."))
    except jwt.InvalidSignatureError:
        return CardCheck(
            False, "bad-signature", _("This card code was not issued by this city (bad signature).")
        )
    except jwt.InvalidTokenError:
        return CardCheck(False, "malformed", _("This is not a citizen card code."))
    if claims.get("typ") != CARD_TYPE:
        return CardCheck(False, "malformed", _("This is not a citizen card code."))
    issued_at = datetime.fromtimestamp(float(claims["iat"]), UTC)
    check = CardCheck(
        True,
        "valid",
        _("Valid citizen card."),
        int(claims["sub"]),
        claims.get("name"),
        claims.get("lvl"),
        issued_at,
        datetime.fromtimestamp(int(claims["exp"]), UTC),
    )
    if session is None:
        return check
    person = session.get(Person, check.person_id)
    if person is None:
        return CardCheck(False, "unknown-person", _("The card holder is not registered."))
    if person.card_valid_after is not None and issued_at < person.card_valid_after:
        return CardCheck(False, "revoked", _("This card was revoked by its holder."), check.person_id)
    return CardCheck(**{**check.__dict__, "revocation_checked": True})


def card_holder(session: Session, settings: Settings, token: str) -> int:
    """The person a scanned citizen card code names, checked online (signature, expiry, revocation), for a
    domain that takes the card as an identifier (a merchant's till). Anything else is a 422 problem
    ``invalid-citizen-card`` whose ``reason`` is the check's code (expired, bad-signature, ...)."""
    public_key = signing_key(settings, domain_settings(IdentitySettings)).public_key()
    check = verify_card(token, public_key, session)
    if not check.valid or check.person_id is None:
        raise ValidationProblem(check.message, slug="invalid-citizen-card", reason=check.reason)
    return check.person_id


def revoke_cards(session: Session, person: Person, actor: str) -> None:
    """Invalidate every card code issued so far (a lost or shared phone); audited."""
    person.card_valid_after = utcnow()
    audit.record(
        session, actor=actor, action="identity.card.revoked", object_type="person", object_id=str(person.id)
    )
