"""The digital citizen card: issue, verify offline and online, refuse expired, revoked and tampered codes."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cityhub.domains.identity.models import Person
from cityhub.domains.identity.service import card
from cityhub.kernel.security import load_public_key_pem
from tests.factories import bearer, build_town, make_user


def _setup(client, database):
    town = build_town(database)
    _account, person = make_user(database, "resident1", [("resident", town.community_a)], name="张三丰")
    make_user(database, "clerk", [("merchant_clerk", town.community_a)], name="李四")
    return person, bearer(client, "resident1"), bearer(client, "clerk")


def test_resident_gets_a_signed_short_lived_card_with_qr(client, database) -> None:
    person, resident, _clerk = _setup(client, database)
    response = client.get("/api/v1/identity/card", headers=resident)
    assert response.status_code == 200
    body = response.json()
    assert body["qr_svg"].startswith("<svg")
    header = json.loads(base64.urlsafe_b64decode(body["token"].split(".")[0] + "=="))
    assert header["alg"] == "EdDSA"
    public_pem = client.get("/api/v1/identity/card/public-key").text
    claims = jwt.decode(
        body["token"], load_public_key_pem(public_pem), algorithms=["EdDSA"], issuer="cityhub"
    )
    assert claims["sub"] == str(person.id)
    assert claims["name"] == "张*丰", "verifiers see a masked name"
    assert claims["exp"] - claims["iat"] <= 121


def test_verifier_accepts_a_fresh_card_and_the_read_is_audited(client, database) -> None:
    _person, resident, clerk = _setup(client, database)
    token = client.get("/api/v1/identity/card", headers=resident).json()["token"]
    checked = client.post("/api/v1/identity/card/verify", headers=clerk, json={"token": token}).json()
    assert checked["valid"] is True and checked["reason"] == "valid" and checked["revocation_checked"] is True
    from cityhub.kernel import audit

    with database.reading() as session:
        assert audit.verify(session).ok


def test_residents_cannot_verify_cards(client, database) -> None:
    _person, resident, _clerk = _setup(client, database)
    token = client.get("/api/v1/identity/card", headers=resident).json()["token"]
    assert (
        client.post("/api/v1/identity/card/verify", headers=resident, json={"token": token}).status_code
        == 403
    )


def test_tampered_card_is_refused_with_bad_signature(client, database) -> None:
    _person, resident, clerk = _setup(client, database)
    token = client.get("/api/v1/identity/card", headers=resident).json()["token"]
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "999"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = f"{header}.{forged_payload}.{signature}"
    result = client.post("/api/v1/identity/card/verify", headers=clerk, json={"token": forged}).json()
    assert result == result | {"valid": False, "reason": "bad-signature"}


def test_card_signed_by_another_key_is_refused(client, database, settings) -> None:
    person, _resident, clerk = _setup(client, database)
    foreign = card.issue_card(
        Person(id=person.id, name="x", verification_level=3), Ed25519PrivateKey.generate(), 60
    )
    result = client.post("/api/v1/identity/card/verify", headers=clerk, json={"token": foreign.token}).json()
    assert result["reason"] == "bad-signature"


def test_expired_card_is_refused(client, database, settings) -> None:
    person, _resident, clerk = _setup(client, database)
    from cityhub.domains.identity.dependencies import identity_settings

    key = card.signing_key(settings, identity_settings())
    with database.reading() as session:
        issued = card.issue_card(session.get(Person, person.id), key, 1)  # type: ignore[arg-type]
    time.sleep(2.1)
    result = client.post("/api/v1/identity/card/verify", headers=clerk, json={"token": issued.token}).json()
    assert result["valid"] is False and result["reason"] == "expired"


def test_revoked_cards_are_refused_online_but_not_by_an_offline_check(client, database, settings) -> None:
    _person, resident, clerk = _setup(client, database)
    token = client.get("/api/v1/identity/card", headers=resident).json()["token"]
    assert client.post("/api/v1/identity/card/revoke", headers=resident).status_code == 204
    online = client.post("/api/v1/identity/card/verify", headers=clerk, json={"token": token}).json()
    assert online["reason"] == "revoked"
    public = load_public_key_pem(client.get("/api/v1/identity/card/public-key").text)
    offline = card.verify_card(token, public)
    assert offline.valid and not offline.revocation_checked
    fresh = client.get("/api/v1/identity/card", headers=resident).json()["token"]
    assert client.post("/api/v1/identity/card/verify", headers=clerk, json={"token": fresh}).json()["valid"]


def test_garbage_is_malformed_not_an_error(client, database) -> None:
    _person, _resident, clerk = _setup(client, database)
    for junk in ("hello", "a.b.c", "x" * 4000):
        result = client.post("/api/v1/identity/card/verify", headers=clerk, json={"token": junk})
        assert result.status_code == 200 and result.json()["reason"] == "malformed"
    assert client.post("/api/v1/identity/card/verify", headers=clerk, json={}).status_code == 422


def test_cli_verifies_a_card_offline_with_the_public_key(client, database, settings, tmp_path) -> None:
    _person, resident, _clerk = _setup(client, database)
    token = client.get("/api/v1/identity/card", headers=resident).json()["token"]
    pem = tmp_path / "card.pub"
    pem.write_text(client.get("/api/v1/identity/card/public-key").text)
    env = {
        "CITYHUB_ENV": "test",
        "CITYHUB_VAR_DIR": str(settings.var_dir),
        "CITYHUB_DATABASE_URL": settings.resolved_database_url,
        "PATH": "/usr/bin:/bin",
    }
    command = [sys.executable, "-m", "cityhub.cli", "card", "verify", token, "--public-key", str(pem)]
    good = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "valid" in good.stdout
    offline = subprocess.run(
        [*command, "--offline"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert offline.returncode == 0 and "revocation not checked" in offline.stdout
    bad = subprocess.run(
        [*command[:5], token[:-4] + "AAAA", "--public-key", str(pem), "--offline"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 1 and "bad-signature" in bad.stdout
