"""`cityhub demo`: write a deterministic synthetic city into the configured database, print its logins, exit.

Every installed domain's ``demo_seeder`` runs in dependency order inside one transaction, so a failed run
leaves nothing behind. Running it again with the same seed and size finds the city and stops at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy import inspect

from cityhub.domains import load_models, manifests
from cityhub.kernel.db import Database
from cityhub.kernel.demo import (
    DEMO_PASSWORD,
    DemoContext,
    DemoLogin,
    DemoSize,
    delete_rows,
    derive_rng,
    domain_tables,
    has_rows,
    last_seeding,
    record_seeding,
    reference_date,
)
from cityhub.kernel.domain import resolve
from cityhub.kernel.settings import Environment, Settings, get_settings

console = Console()


class DemoRefusedError(Exception):
    """The database holds other data; seeding would mix with it."""


@dataclass(frozen=True)
class DemoOutcome:
    already_present: bool
    logins: tuple[DemoLogin, ...]
    seconds: float


def seed_city(
    database: Database,
    settings: Settings,
    size: DemoSize,
    seed: int,
    *,
    reset: bool,
    progress: Progress,
    today: date | None = None,
) -> DemoOutcome:
    """Seed every installed domain (or find this very city already there).

    Raises DemoRefusedError when the domain tables hold anything else and ``reset`` is false; with ``reset``
    the domain tables are emptied first (the audit chain is kept: it records each seeding).
    """
    started = time.perf_counter()
    domains = [domain for domain in manifests() if domain.demo_seeder]
    load_models()
    tables = domain_tables([domain.name for domain in manifests()])
    with database.unit_of_work() as session:
        if has_rows(session, tables):
            previous = last_seeding(session)
            if not reset:
                if previous and (previous.seed, previous.size) == (seed, size):
                    return DemoOutcome(True, previous.logins, time.perf_counter() - started)
                what = f"the {previous.size} demo city of seed {previous.seed}" if previous else "data"
                raise DemoRefusedError(f"The database already holds {what}; add --reset to replace it.")
            delete_rows(session, tables)
        logins: list[DemoLogin] = []
        for domain in domains:
            seeder = resolve(str(domain.demo_seeder))
            seeder(
                DemoContext(
                    session=session,
                    settings=settings,
                    size=size,
                    seed=seed,
                    rng=derive_rng(seed, domain.name),
                    progress=progress,
                    today=reference_date(today),
                    logins=logins,
                )
            )
        record_seeding(session, seed, size, [domain.name for domain in domains], logins)
    return DemoOutcome(False, tuple(logins), time.perf_counter() - started)


def demo(
    size: Annotated[
        DemoSize, typer.Option(help="small: ~2,000 residents; medium: ~20,000; large: ~200,000.")
    ] = DemoSize.SMALL,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same city.")] = 42,
    reset: Annotated[
        bool, typer.Option("--reset/--no-reset", help="Delete all domain data first (the audit chain stays).")
    ] = False,
) -> None:
    """Seed a synthetic demo city into the database (CITYHUB_DATABASE_URL) and print its logins."""
    settings = get_settings()
    if settings.env is Environment.PRODUCTION:
        console.print("[red]Refusing to seed demo data with CITYHUB_ENV=production.[/]")
        raise typer.Exit(1)
    database = Database.from_settings(settings)
    try:
        if not inspect(database.engine).has_table("identity_org_unit"):
            console.print("[red]The database has no schema yet: run `cityhub migrate` first.[/]")
            raise typer.Exit(1)
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            outcome = seed_city(database, settings, size, seed, reset=reset, progress=progress)
    except DemoRefusedError as refused:
        console.print(f"[red]{refused}[/]")
        raise typer.Exit(1) from refused
    finally:
        database.dispose()
    if outcome.already_present:
        console.print(f"The {size} demo city of seed {seed} is already in the database; nothing to do.")
    else:
        console.print(f"[green]Seeded the {size} demo city (seed {seed}) in {outcome.seconds:.1f} s.[/]")
    console.print(logins_table(outcome.logins))
    console.print(f"Every demo login's password: [bold]{DEMO_PASSWORD}[/]")
    console.print(f"Start the server with `cityhub serve`, then open {settings.base_url}")


def logins_table(logins: tuple[DemoLogin, ...]) -> Table:
    table = Table(title="Demo logins")
    for column in ("role", "username", "scope", "organisation"):
        table.add_column(column)
    for login in logins:
        table.add_row(login.role, login.username, login.scope, login.organization or "")
    return table


def register(app: typer.Typer) -> None:
    """Add `cityhub demo` to the main app."""
    app.command("demo")(demo)
