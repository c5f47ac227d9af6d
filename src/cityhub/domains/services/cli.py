"""Services commands: `cityhub services import FILE` loads a catalogue file (the API's JSON format)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from cityhub.domains.services.schemas import CatalogueIn
from cityhub.domains.services.service import catalogue
from cityhub.kernel.db import Database
from cityhub.kernel.errors import Problem
from cityhub.kernel.settings import get_settings

console = Console()
services_app = typer.Typer(name="services", help="The city service catalogue.", no_args_is_help=True)


@services_app.command("import")
def import_file(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Catalogue JSON file.")],
) -> None:
    """Create or update departments, categories, life events and items by code; all or nothing."""
    try:
        given = CatalogueIn.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as exc:
        console.print(f"[red]{path} is not a catalogue file[/]: {exc}")
        raise typer.Exit(1) from exc
    database = Database.from_settings(get_settings())
    try:
        with database.unit_of_work() as session:
            result = catalogue.import_catalogue(session, "system:cli", given)
    except Problem as problem:
        console.print(f"[red]{problem.title or problem.slug}[/]: {problem.detail or ''}")
        for error in problem.extensions.get("errors", [])[:20]:
            console.print(f"  {error}")
        raise typer.Exit(1) from problem
    finally:
        database.dispose()
    console.print(f"created {result.created or 'nothing'}; updated {result.updated or 'nothing'}")
