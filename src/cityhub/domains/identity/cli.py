"""Identity commands: `cityhub user`, `cityhub apikey`, `cityhub orgs`, `cityhub card`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import Progress
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.domains.identity.dependencies import identity_settings
from cityhub.domains.identity.models import Account, ApiKey, OrgUnit
from cityhub.domains.identity.service import accounts, apikeys, card, orgs, people
from cityhub.domains.identity.service.access import Grant, Principal
from cityhub.kernel import audit
from cityhub.kernel.db import Database
from cityhub.kernel.domain import access_catalog
from cityhub.kernel.errors import Problem
from cityhub.kernel.security import load_or_create_ed25519, load_public_key_pem, public_key_pem
from cityhub.kernel.settings import get_settings

console = Console()
user_app = typer.Typer(name="user", help="Create and manage accounts.", no_args_is_help=True)
apikey_app = typer.Typer(name="apikey", help="Create and revoke machine API keys.", no_args_is_help=True)
orgs_app = typer.Typer(name="orgs", help="The org-unit tree.", no_args_is_help=True)
card_app = typer.Typer(name="card", help="Citizen-card signing keys and verification.", no_args_is_help=True)


def _database() -> Database:
    return Database.from_settings(get_settings())


def _fail(problem: Problem) -> NoReturn:
    console.print(f"[red]{problem.title or problem.slug}[/]: {problem.detail or ''}")
    raise typer.Exit(1)


def _scope_unit(session: Session, code: str | None) -> OrgUnit:
    """The org unit named by --org, else the root; exits when the tree is still empty."""
    unit = orgs.get_unit_by_code(session, code) if code else orgs.root_unit(session)
    if unit is None:
        console.print("[red]No org units yet: run `cityhub orgs import` or `cityhub demo` first.[/]")
        raise typer.Exit(1)
    return unit


def _cli_principal(org_path: str) -> Principal:
    """The person at the terminal holds every permission: they already hold the database credentials."""
    everything = frozenset(access_catalog.permissions)
    return Principal("system", 0, "cli", None, (Grant("cli", 0, org_path, None, everything),))


@user_app.command("create")
def user_create(
    username: str,
    name: Annotated[str, typer.Option(help="The person's full name.")],
    role: Annotated[list[str], typer.Option(help="Role to grant (repeatable).")] = ["resident"],  # noqa: B006
    org: Annotated[
        str | None, typer.Option(help="Org unit code the roles cover (default: the root).")
    ] = None,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)] = "",
) -> None:
    """Create a person with a login and roles."""
    database = _database()
    try:
        with database.unit_of_work() as session:
            unit = _scope_unit(session, org)
            person = people.create_person(
                session, people.PersonInput(name=name), identity_settings().id_number_key
            )
            account = accounts.create_account(session, person, username, password)
            for code in role:
                accounts.grant_role(session, None, account, code, unit)
    except Problem as problem:
        _fail(problem)
    console.print(
        f"[green]created[/] {username} (account {account.id}) with {', '.join(role)} over {unit.code}"
    )


@apikey_app.command("create")
def apikey_create(
    name: str,
    permission: Annotated[list[str], typer.Option(help="Permission the key carries (repeatable).")],
    org: Annotated[
        str | None, typer.Option(help="Org unit code the key is scoped to (default: root).")
    ] = None,
    expires: Annotated[datetime | None, typer.Option(help="Expiry (ISO 8601, UTC if no zone).")] = None,
) -> None:
    """Create a key; the secret is printed once."""
    database = _database()
    try:
        with database.unit_of_work() as session:
            unit = _scope_unit(session, org)
            if expires is not None and expires.tzinfo is None:
                expires = expires.replace(tzinfo=UTC)
            key, secret = apikeys.create_key(
                session,
                _cli_principal(unit.path),
                name=name,
                permissions=permission,
                org_unit=unit,
                expires_at=expires,
            )
    except Problem as problem:
        _fail(problem)
    console.print(f"[green]key {key.id}[/] ({name}) — store it now, it is not shown again:")
    print(secret)


@apikey_app.command("revoke")
def apikey_revoke(key_id: int) -> None:
    """Revoke a key at once."""
    database = _database()
    try:
        with database.unit_of_work() as session:
            apikeys.revoke_key(session, _cli_principal("/"), key_id)
    except Problem as problem:
        _fail(problem)
    console.print(f"[green]revoked[/] key {key_id}")


@apikey_app.command("list")
def apikey_list() -> None:
    """List keys (never their secrets)."""
    with _database().reading() as session:
        for key in session.scalars(select(ApiKey).order_by(ApiKey.id)):
            state = "revoked" if key.revoked_at else "active"
            console.print(f"{key.id}\t{key.prefix}\t{key.name}\t{state}\t{','.join(key.permissions)}")


@orgs_app.command("import")
def orgs_import(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]) -> None:
    """Import org units from a CSV or GeoJSON file (all or nothing)."""
    database = _database()
    try:
        content = path.read_bytes()
        with Progress(console=console) as progress, database.unit_of_work() as session:
            task = progress.add_task("importing", total=None)
            created = orgs.import_file(
                session, _cli_principal("/"), path.name, content, on_created=lambda: progress.advance(task)
            )
    except Problem as problem:
        _fail(problem)
    console.print(f"[green]imported {created} org units[/] from {path}")


@card_app.command("verify")
def card_verify(
    token: str,
    public_key: Annotated[
        Path | None, typer.Option(help="PEM public key; default: this deployment's key.")
    ] = None,
    offline: Annotated[bool, typer.Option(help="Do not consult the database (no revocation check).")] = False,
) -> None:
    """Verify a citizen-card code: signature and expiry offline, revocation when the database is reachable."""
    settings = get_settings()
    key = (
        load_public_key_pem(public_key.read_bytes())
        if public_key
        else card.signing_key(settings, identity_settings()).public_key()
    )
    if offline:
        check = card.verify_card(token, key)
    else:
        with _database().reading() as session:
            check = card.verify_card(token, key, session)
    colour = "green" if check.valid else "red"
    console.print(f"[{colour}]{check.reason}[/]: {check.message}")
    if check.valid:
        console.print(
            f"person {check.person_id} {check.name_masked} level {check.verification_level}, "
            f"expires {check.expires_at:%Y-%m-%d %H:%M:%S} UTC"
            + ("" if check.revocation_checked else " (revocation not checked)")
        )
    raise typer.Exit(0 if check.valid else 1)


@card_app.command("keygen")
def card_keygen(
    out: Annotated[
        Path | None, typer.Option(help="Where to write the private key (default: the configured path).")
    ] = None,
) -> None:
    """Create the Ed25519 card signing key (mode 0600); refuses to overwrite an existing key."""
    path = out or card.key_path(get_settings(), identity_settings())
    if path.exists():
        console.print(f"[red]{path} exists; refusing to overwrite a signing key[/]")
        raise typer.Exit(1)
    key = load_or_create_ed25519(path, create=True)
    console.print(f"[green]created[/] {path}")
    sys.stdout.write(public_key_pem(key.public_key()))


@card_app.command("public-key")
def card_public_key() -> None:
    """Print the public key verifiers need (PEM)."""
    sys.stdout.write(public_key_pem(card.signing_key(get_settings(), identity_settings()).public_key()))


@user_app.command("unlock")
def user_unlock(username: str) -> None:
    """Lift a login lockout."""
    with _database().unit_of_work() as session:
        account = session.scalar(select(Account).where(Account.username == username))
        if account is None:
            console.print(f"[red]no account {username}[/]")
            raise typer.Exit(1)
        account.locked_until = None
        account.failed_logins = 0
        audit.record(
            session,
            actor="system:cli",
            action="identity.account.unlocked",
            object_type="account",
            object_id=str(account.id),
        )
    console.print(f"[green]unlocked[/] {username}")
