"""Every services route is public catalogue, self-service (/me) or permission-checked; the CLI import."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from fastapi.routing import APIRoute
from sqlalchemy import func, select
from typer.testing import CliRunner

from cityhub.domains.services.cli import services_app
from cityhub.domains.services.models import Item
from cityhub.kernel.db import Database
from tests.domains.services.catalogue_data import CATALOGUE


def cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(services_app)
    return app


PUBLIC_READS = {
    "/departments",
    "/categories",
    "/life-events",
    "/items",
    "/items/{code}",
    "/items/{code}/slots",
}
SELF_SERVICE = {"/items/{code}/my-records"}
SIGNED_BY_THE_PROVIDER = {"/payments/callbacks/sandbox"}


def test_every_services_route_is_public_self_service_or_checked(app) -> None:
    for route in app.routes:
        if not (isinstance(route, APIRoute) and route.path.startswith("/api/v1/services")):
            continue
        path = route.path.removeprefix("/api/v1/services")
        if (route.methods == {"GET"} and path in PUBLIC_READS) or path in SIGNED_BY_THE_PROVIDER:
            continue
        checks = [getattr(d.call, "__name__", "") for d in route.dependant.dependencies]
        if path.startswith("/me/") or path in SELF_SERVICE:
            assert "current_principal" in checks, f"{route.methods} {route.path} lets anonymous callers in"
            continue
        assert {"require_services_catalogue_manage", "require_services_desk_manage"} & set(checks), (
            f"{route.methods} {route.path} is unchecked"
        )


def test_the_cli_imports_a_catalogue_file_all_or_nothing(
    settings, database: Database, tmp_path: Path
) -> None:
    good = tmp_path / "catalogue.json"
    good.write_text(json.dumps(CATALOGUE, ensure_ascii=False), encoding="utf-8")
    result = CliRunner().invoke(cli(), ["services", "import", str(good)])
    assert result.exit_code == 0, result.output
    assert "'items': 6" in result.output
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"items": [{**CATALOGUE["items"][0], "code": "gjj-new", "category": "x"}]}))
    result = CliRunner().invoke(cli(), ["services", "import", str(broken)])
    assert result.exit_code == 1 and "'field': 'category', 'code': 'x'" in result.output
    not_json = tmp_path / "nonsense.json"
    not_json.write_text("{", encoding="utf-8")
    assert CliRunner().invoke(cli(), ["services", "import", str(not_json)]).exit_code == 1
    with database.reading() as session:
        assert session.scalar(select(func.count()).select_from(Item)) == 6
