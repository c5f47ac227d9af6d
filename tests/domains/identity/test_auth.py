"""Logins, lockout, token refresh/rotation/revocation, API keys, rate limits — on both databases."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from cityhub.domains.identity import dependencies
from cityhub.domains.identity.models import Account, RefreshToken
from cityhub.domains.identity.service import accounts
from cityhub.domains.identity.service.principals import principal_cache
from cityhub.kernel.db import utcnow
from cityhub.kernel.models import AuditRecord
from cityhub.kernel.settings import clear_settings_cache
from tests.factories import PASSWORD, bearer, build_town, make_user

TOKEN_URL = "/api/v1/identity/token"


@pytest.fixture
def town(database):
    return build_town(database)


def test_password_login_returns_tokens_and_me_works(client, database, town) -> None:
    make_user(database, "resident1", [("resident", town.community_a)], household=town.household_a)
    response = client.post(TOKEN_URL, data={"username": "resident1", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 15 * 60
    me = client.get("/api/v1/identity/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["username"] == "resident1"
    assert me.json()["roles"][0]["role"] == "resident"


def test_wrong_password_and_unknown_user_get_the_same_problem(client, database, town) -> None:
    make_user(database, "resident1", [("resident", town.community_a)])
    wrong = client.post(TOKEN_URL, data={"username": "resident1", "password": "nope-nope"})
    unknown = client.post(TOKEN_URL, data={"username": "ghost", "password": "nope-nope"})
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/bad-credentials")
        assert response.json()["request_id"]
    assert wrong.json()["detail"] == unknown.json()["detail"]


def test_lockout_after_repeated_failures_survives_the_correct_password(client, database, town) -> None:
    make_user(database, "resident1", [("resident", town.community_a)])
    failures = [
        client.post(TOKEN_URL, data={"username": "resident1", "password": "bad-pass"}) for _ in range(5)
    ]
    assert {response.status_code for response in failures} == {401}
    locked = client.post(TOKEN_URL, data={"username": "resident1", "password": PASSWORD})
    assert locked.status_code == 401, "a locked account refuses even the right password"
    assert locked.json()["detail"] == failures[0].json()["detail"], "a lock must look like a wrong password"
    with database.unit_of_work() as session:
        account = session.scalar(select(Account).where(Account.username == "resident1"))
        assert account is not None and account.locked_until is not None
        actions = session.scalars(select(AuditRecord.action)).all()
        assert "identity.account.locked" in actions
        account.locked_until = utcnow() - timedelta(seconds=1)
    assert client.post(TOKEN_URL, data={"username": "resident1", "password": PASSWORD}).status_code == 200


def test_disabled_and_unknown_accounts_are_indistinguishable(client, database, town) -> None:
    account, _person = make_user(database, "resident1", [("resident", town.community_a)])
    with database.unit_of_work() as session:
        session.get(Account, account.id).is_active = False
    disabled = client.post(TOKEN_URL, data={"username": "resident1", "password": PASSWORD})
    unknown = client.post(TOKEN_URL, data={"username": "nobody", "password": PASSWORD})
    assert disabled.status_code == unknown.status_code == 401
    assert disabled.json()["detail"] == unknown.json()["detail"]


def test_login_rate_limit_answers_429_problem(client, database, town, settings) -> None:
    codes = [
        client.post(TOKEN_URL, data={"username": f"u{i}", "password": "whatever1"}).status_code
        for i in range(11)
    ]
    assert codes[:10] == [401] * 10
    assert codes[10] == 429
    limited = client.post(TOKEN_URL, data={"username": "u", "password": "whatever1"})
    assert limited.json()["type"].endswith("/too-many-requests")
    assert "Retry-After" in limited.headers


def test_refresh_rotates_and_a_reused_refresh_token_is_refused(client, database, town) -> None:
    make_user(database, "resident1", [("resident", town.community_a)])
    first = client.post(TOKEN_URL, data={"username": "resident1", "password": PASSWORD}).json()
    second = client.post(
        TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    again = client.post(
        TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert again.status_code == 401
    assert again.json()["type"].endswith("/token-revoked")
    stolen_family = client.post(
        TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": second.json()["refresh_token"]}
    )
    assert stolen_family.status_code == 401, "reusing a rotated token revokes its whole family"
    with database.reading() as session:
        assert "identity.refresh_token.reused" in session.scalars(select(AuditRecord.action)).all()


def test_logout_revokes_the_refresh_token(client, database, town) -> None:
    make_user(database, "resident1", [("resident", town.community_a)])
    pair = client.post(TOKEN_URL, data={"username": "resident1", "password": PASSWORD}).json()
    assert (
        client.post(
            "/api/v1/identity/token/revoke", json={"refresh_token": pair["refresh_token"]}
        ).status_code
        == 204
    )
    with database.reading() as session:
        assert session.scalar(select(RefreshToken.revoked_at)) is not None
    refused = client.post(
        TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]}
    )
    assert refused.status_code == 401


def test_access_token_cannot_be_used_as_refresh_token_and_garbage_is_401(client, database, town) -> None:
    make_user(database, "resident1", [("resident", town.community_a)])
    pair = client.post(TOKEN_URL, data={"username": "resident1", "password": PASSWORD}).json()
    swapped = client.post(
        TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": pair["access_token"]}
    )
    assert swapped.status_code == 401
    garbage = client.get("/api/v1/identity/me", headers={"Authorization": "Bearer not.a.jwt"})
    assert garbage.status_code == 401
    assert garbage.headers["WWW-Authenticate"] == "Bearer"
    refresh_as_access = client.get(
        "/api/v1/identity/me", headers={"Authorization": f"Bearer {pair['refresh_token']}"}
    )
    assert refresh_as_access.status_code == 401


def test_disabled_account_cannot_use_its_token(client, database, town) -> None:
    account, _person = make_user(database, "resident1", [("resident", town.community_a)])
    headers = bearer(client, "resident1")
    assert client.get("/api/v1/identity/me", headers=headers).status_code == 200
    with database.unit_of_work() as session:
        accounts.set_active(session, None, session.get(Account, account.id), False)
    assert client.get("/api/v1/identity/me", headers=headers).status_code == 401


def test_changes_made_elsewhere_apply_once_the_cached_principal_expires(
    client, database, town, monkeypatch
) -> None:
    monkeypatch.setenv("CITYHUB_IDENTITY__PRINCIPAL_CACHE_SECONDS", "0.5")
    clear_settings_cache()
    account, _person = make_user(database, "resident1", [("resident", town.community_a)])
    headers = bearer(client, "resident1")
    assert client.get("/api/v1/identity/me", headers=headers).status_code == 200
    with database.unit_of_work() as session:  # as another process would: no eviction here
        session.get(Account, account.id).is_active = False
    assert client.get("/api/v1/identity/me", headers=headers).status_code == 200
    time.sleep(0.6)
    assert client.get("/api/v1/identity/me", headers=headers).status_code == 401


def test_a_cached_principal_past_half_its_life_is_reloaded_in_the_background(
    client, database, town, monkeypatch
) -> None:
    monkeypatch.setenv("CITYHUB_IDENTITY__PRINCIPAL_CACHE_SECONDS", "0.6")
    clear_settings_cache()
    loads: list[int] = []
    real_load = dependencies.principal_for_account

    def counting_load(session, account_id):  # type: ignore[no-untyped-def]
        loads.append(account_id)
        return real_load(session, account_id)

    monkeypatch.setattr(dependencies, "principal_for_account", counting_load)
    account, _person = make_user(database, "resident1", [("resident", town.community_a)])
    headers = bearer(client, "resident1")
    first_cached_at = time.monotonic()
    assert client.get("/api/v1/identity/me", headers=headers).status_code == 200
    assert len(loads) == 1
    time.sleep(0.4)
    assert client.get("/api/v1/identity/me", headers=headers).status_code == 200  # answered from the cache
    deadline = time.monotonic() + 5
    while len(loads) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(loads) == 2, "the due entry was not reloaded"
    time.sleep(max(0.0, first_cached_at + 0.7 - time.monotonic()))
    assert principal_cache.get(("account", account.id), 0.6) is not None, "the reload did not renew the entry"


def test_unsupported_grant_and_missing_fields_are_problems(client, database, town) -> None:
    assert client.post(TOKEN_URL, data={"grant_type": "client_credentials"}).status_code == 422
    assert client.post(TOKEN_URL, data={"username": "x"}).status_code == 422


def test_api_key_lifecycle(client, database, town) -> None:
    make_user(database, "operator1", [("operator", town.city)])
    headers = bearer(client, "operator1")
    created = client.post(
        "/api/v1/identity/api-keys",
        headers=headers,
        json={"name": "gateway 7", "permissions": ["identity.orgs.read"], "org_unit_id": town.district_a.id},
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    assert key.startswith("chk_")
    listed = client.get("/api/v1/identity/api-keys", headers=headers).json()
    assert listed["total"] == 1 and "key" not in listed["items"][0]
    as_machine = client.get("/api/v1/identity/org-units", headers={"X-API-Key": key})
    assert as_machine.status_code == 200
    codes = {unit["code"] for unit in as_machine.json()["items"]}
    assert "Da" in codes and "Db" not in codes, "a key scoped to district A must not see district B"
    assert (
        client.get("/api/v1/identity/org-units", headers={"Authorization": f"ApiKey {key}"}).status_code
        == 200
    )
    assert client.get("/api/v1/identity/people", headers={"X-API-Key": key}).status_code == 403
    tampered = key[:-2] + ("AA" if not key.endswith("AA") else "BB")
    assert client.get("/api/v1/identity/org-units", headers={"X-API-Key": tampered}).status_code == 401
    assert (
        client.delete(f"/api/v1/identity/api-keys/{created.json()['id']}", headers=headers).status_code == 204
    )
    revoked = client.get("/api/v1/identity/org-units", headers={"X-API-Key": key})
    assert revoked.status_code == 401
    assert revoked.json()["type"].endswith("/api-key-revoked")


def test_api_key_cannot_carry_permissions_its_creator_lacks(client, database, town) -> None:
    make_user(database, "operator1", [("operator", town.city)])
    headers = bearer(client, "operator1")
    unknown = client.post(
        "/api/v1/identity/api-keys",
        headers=headers,
        json={"name": "x", "permissions": ["nonsense.perm"], "org_unit_id": town.city.id},
    )
    assert unknown.status_code == 422
    past = client.post(
        "/api/v1/identity/api-keys",
        headers=headers,
        json={
            "name": "x",
            "permissions": ["identity.orgs.read"],
            "org_unit_id": town.city.id,
            "expires_at": "2020-01-01T00:00:00Z",
        },
    )
    assert past.status_code == 422


def test_expired_api_key_is_refused(client, database, town) -> None:
    from cityhub.domains.identity.models import ApiKey

    make_user(database, "operator1", [("operator", town.city)])
    created = client.post(
        "/api/v1/identity/api-keys",
        headers=bearer(client, "operator1"),
        json={
            "name": "x",
            "permissions": ["identity.orgs.read"],
            "org_unit_id": town.city.id,
            "expires_at": (utcnow() + timedelta(days=1)).isoformat(),
        },
    ).json()
    with database.unit_of_work() as session:
        session.get(ApiKey, created["id"]).expires_at = utcnow() - timedelta(seconds=1)  # type: ignore[union-attr]
    refused = client.get("/api/v1/identity/org-units", headers={"X-API-Key": created["key"]})
    assert refused.status_code == 401
    assert refused.json()["type"].endswith("/api-key-expired")


def test_password_change_ends_other_sessions_and_tokens(client, database, town) -> None:
    make_user(database, "resident1", [("resident", town.community_a)])
    pair = client.post(TOKEN_URL, data={"username": "resident1", "password": PASSWORD}).json()
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    wrong = client.post(
        "/api/v1/identity/me/password",
        headers=headers,
        json={"current_password": "not-it-at-all", "new_password": "a-new-secret-42"},
    )
    assert wrong.status_code == 401
    short = client.post(
        "/api/v1/identity/me/password",
        headers=headers,
        json={"current_password": PASSWORD, "new_password": "short"},
    )
    assert short.status_code == 422
    changed = client.post(
        "/api/v1/identity/me/password",
        headers=headers,
        json={"current_password": PASSWORD, "new_password": "a-new-secret-42"},
    )
    assert changed.status_code == 204
    assert client.post(TOKEN_URL, data={"username": "resident1", "password": PASSWORD}).status_code == 401
    assert (
        client.post(TOKEN_URL, data={"username": "resident1", "password": "a-new-secret-42"}).status_code
        == 200
    )
    reuse = client.post(
        TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]}
    )
    assert reuse.status_code == 401, "refresh tokens issued before the change are revoked"
    with database.reading() as session:
        assert "identity.password.changed" in session.scalars(select(AuditRecord.action)).all()
