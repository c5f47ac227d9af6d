"""Exchange commands: `cityhub exchange load CODE FILE` loads a data file as a new version of a resource (a
progress bar while its rows are checked and stored); `cityhub exchange resources` lists the catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select

from cityhub.domains.exchange.models import Resource
from cityhub.domains.exchange.service import loads
from cityhub.domains.exchange.service.access import ADMINISTER
from cityhub.domains.identity import system_principal
from cityhub.kernel.db import Database
from cityhub.kernel.errors import Problem
from cityhub.kernel.settings import get_settings

console = Console()
exchange_app = typer.Typer(
    name="exchange", help="The data exchange: resources and their data.", no_args_is_help=True
)


@exchange_app.command("load")
def load(
    code: Annotated[str, typer.Argument(help="The resource's code.")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A .csv or .json file.")],
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
