"""Secrets: password hashing (argon2), signed tokens (JWT), machine keys, Ed25519 key files, CSRF."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

_password_hasher = PasswordHasher()
JWT_ALGORITHM = "HS256"
API_KEY_PREFIX = "chk_"


def hash_password(password: str) -> str:
    return _password_hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _password_hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _password_hasher.check_needs_rehash(password_hash)


# A hash to verify against when the account does not exist, so timing does not reveal which usernames exist.
DUMMY_PASSWORD_HASH = _password_hasher.hash(secrets.token_urlsafe(16))


def issue_jwt(secret: str, claims: dict[str, Any], lifetime: timedelta) -> str:
    now = datetime.now(UTC)
    payload = {"iat": now, "nbf": now, "exp": now + lifetime, "jti": secrets.token_urlsafe(12)} | claims
    return jwt.encode(payload, secret, algorithm=JWT_ALGORITHM)


def decode_jwt(secret: str, token: str, token_type: str) -> dict[str, Any]:
    """Claims of a valid token of the given type; raises jwt.InvalidTokenError otherwise.

    A client sends the same access token on every request; verifying it once and remembering the claims
    (expiry is still checked on every use) saves PyJWT's parsing on the hot path.
    """
    claims = _verified_claims(secret, token)
    if claims.get("typ") != token_type:
        raise jwt.InvalidTokenError(f"expected a {token_type} token")
    if claims["exp"] <= time.time():
        raise jwt.ExpiredSignatureError("Signature has expired")
    return dict(claims)


@lru_cache(maxsize=4096)
def _verified_claims(secret: str, token: str) -> dict[str, Any]:
    # Only successful verifications are cached (exceptions are not); the caller copies the dict.
    claims: dict[str, Any] = jwt.decode(
        token, secret, algorithms=[JWT_ALGORITHM], options={"require": ["exp", "sub", "typ"]}
    )
    return claims


def new_api_key() -> tuple[str, str, str]:
    """A fresh machine key: (full key shown once, public prefix for lookup, hash to store).

    Keys carry 256 random bits, so a fast SHA-256 is enough (no slow hash needed per request).
    """
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    full = f"{API_KEY_PREFIX}{prefix}_{secret}"
    return full, prefix, hash_api_key(full)


def hash_api_key(full_key: str) -> str:
    return hashlib.sha256(full_key.encode()).hexdigest()


def split_api_key(full_key: str) -> str | None:
    """The lookup prefix of a well-formed key, or None."""
    if not full_key.startswith(API_KEY_PREFIX):
        return None
    prefix, _, secret = full_key[len(API_KEY_PREFIX) :].partition("_")
    return prefix if len(prefix) == 8 and secret else None


def constant_time_equal(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode(), right.encode())


def load_or_create_ed25519(path: Path, create: bool) -> Ed25519PrivateKey:
    """Load a PEM private key; create it (mode 0600) when allowed and missing."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return key
    if not create:
        raise FileNotFoundError(f"signing key {path} is missing; create it with `cityhub card keygen`")
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.touch(mode=0o600)
    path.write_bytes(pem)
    return key


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public_key_pem(pem: str | bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def csrf_token_for(secret: str, session_id: str) -> str:
    """A CSRF token bound to one page session (HMAC), checked on every unsafe page request."""
    return hmac.new(secret.encode(), f"csrf:{session_id}".encode(), hashlib.sha256).hexdigest()
