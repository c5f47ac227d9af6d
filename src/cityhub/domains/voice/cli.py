"""Voice commands: `cityhub voice categories FILE` loads the classification tree (the API's JSON format);
`cityhub voice rollup-rebuild` counts the assessment's rollup of closed tickets afresh."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from cityhub.domains.identity import system_principal
from cityhub.domains.voice.schemas import CategoriesIn
from cityhub.domains.voice.service import categories, rollup
from cityhub.kernel.db import Database
from cityhub.kernel.errors import Problem
from cityhub.kernel.settings import get_settings

console = Console()
voice_app = typer.Typer(name="voice", help="The 12345 hotline.", no_args_is_help=True)


@voice_app.command("categories")
def import_categories(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Categories JSON file.")],
) -> None:
    """Create or update the ticket categories by code; all or nothing."""
    try:
        given = CategoriesIn.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as exc:
        console.print(f"[red]{path} is not a categories file[/]: {exc}")
        raise typer.Exit(1) from exc
    database = Database.from_settings(get_settings())
    try:
        with database.unit_of_work() as session:
            system = system_principal(session, "cli", {categories.MANAGE})
            counts = categories.import_categories(session, system, given)
    except Problem as problem:
        console.print(f"[red]{problem.title or problem.slug}[/]: {problem.detail or ''}")
        raise typer.Exit(1) from problem
    finally:
        database.dispose()
    console.print(f"created {counts['created']}; updated {counts['updated']}")


@voice_app.command("rollup-rebuild")
def rebuild_rollup() -> None:
    """Count the assessment's rollup of closed tickets afresh: after a bulk import of tickets or a change
    of CITYHUB_TIMEZONE."""
    settings = get_settings()
    database = Database.from_settings(settings)
    try:
        with database.unit_of_work() as session:
            counted = rollup.rebuild(session, settings.timezone)
    finally:
        database.dispose()
    console.print(f"counted {counted} closed tickets")
