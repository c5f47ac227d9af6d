"""Exchange commands: `cityhub exchange load CODE FILE` loads a data file (CSV, JSON or Excel .xlsx) as a new
version of a resource (a progress bar while its rows are checked and stored); `cityhub exchange poll [CODE]`
polls a resource's API or context-hub source now (without CODE: every resource due); `cityhub exchange
resources` lists the catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select

from cityhub.domains.exchange.models import Resource, Version
from cityhub.domains.exchange.service import loads, sources
from cityhub.domains.exchange.service.access import ADMINISTER
from cityhub.domains.exchange.settings import ExchangeSettings
from cityhub.domains.identity import system_principal
from cityhub.kernel.db import Database, utcnow
from cityhub.kernel.errors import Problem
from cityhub.kernel.settings import domain_settings, get_settings

console = Console()
exchange_app = typer.Typer(
    name="exchange", help="The data exchange: resources and their data.", no_args_is_help=True
)


@exchange_app.command("load")
def load(
    code: Annotated[str, typer.Argument(help="The resource's code.")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A .csv, .json or .xlsx file.")],
    note: Annotated[str, typer.Option(help="What this version is (shown with it).")] = "",
) -> None:
    """Load a file as a new version of a resource, as the platform (audited as system:cli)."""
    content = file.read_bytes()
    database = Database.from_settings(get_settings())
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,} rows"))
    try:
        with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task(f"checking and storing {file.name}", total=None)
            with database.unit_of_work() as session:
                principal = system_principal(session, "cli", {ADMINISTER})
                version = loads.load(
                    session,
                    principal,
                    code,
                    file.name,
                    content,
                    note,
                    progress=lambda rows: progress.update(task, completed=rows),
                )
                number, valid, rows, report = version.number, version.valid, version.row_count, version.report
    except Problem as problem:
        console.print(f"[red]{problem.detail or problem.slug}[/]")
        raise typer.Exit(2) from problem
    finally:
        database.dispose()
    if valid:
        console.print(f"version {number}: {rows:,} rows, valid, now current")
        return
    console.print(f"[red]version {number} is not valid[/]: {report['error_count']} errors; the first:")
    for error in report["errors"][:20]:
        console.print(f"  row {error['row'] or '-'} {error['field'] or ''}: {error['message']}")
    raise typer.Exit(1)


@exchange_app.command("poll")
def poll(
    code: Annotated[
        str | None, typer.Argument(help="The resource's code; none: every resource due for a poll.")
    ] = None,
) -> None:
    """Poll API and context-hub sources now, as the platform (audited as system:cli): a new version for each
    whose data changed. Exit 1 when a source failed or its data did not validate."""
    settings = domain_settings(ExchangeSettings)
    database = Database.from_settings(get_settings())
    polled: list[sources.Polled] = []
    try:
        with database.reading() as session:
            principal = system_principal(session, "cli", {ADMINISTER})
            codes = [code] if code else [target.code for target in sources.due_targets(session, utcnow())]
        columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"))
        with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task("polling", total=len(codes))
            for each in codes:
                progress.update(task, description=f"polling {each}")
                polled.append(sources.poll(database, principal, each, settings))
                progress.advance(task)
    except Problem as problem:
        console.print(f"[red]{problem.detail or problem.slug}[/]")
        raise typer.Exit(2) from problem
    finally:
        database.dispose()
    table = Table("code", "outcome", "version", "rows", "error")
    for result in polled:
        version = result.version
        table.add_row(
            result.code,
            result.outcome,
            str(version.number) if version else "-",
            f"{version.row_count:,}" if version else "-",
            result.error or _first_error(version),
        )
    console.print(table if polled else "nothing is due")
    if any(result.outcome == "invalid" for result in polled):
        raise typer.Exit(1)


def _first_error(version: Version | None) -> str:
    errors = (version.report or {}).get("errors", []) if version is not None else []
    if not errors:
        return ""
    first = errors[0]
    return f"row {first['row'] or '-'} {first['field'] or ''}: {first['message']}"


@exchange_app.command("resources")
def resources() -> None:
    """The catalogue, newest change first."""
    database = Database.from_settings(get_settings())
    try:
        with database.reading() as session:
            rows = list(session.scalars(select(Resource).order_by(Resource.modified_at.desc())))
    finally:
        database.dispose()
    table = Table("code", "name", "sharing", "open", "status")
    for resource in rows:
        table.add_row(
            resource.code, resource.name, resource.sharing_class, resource.open_class, resource.status
        )
    console.print(table)
