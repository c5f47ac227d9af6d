"""`cityhub voice categories FILE`: the classification tree from a file, all or nothing."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from cityhub.domains.voice.cli import voice_app
from cityhub.kernel.db import Database
from tests.domains.voice.test_tickets import TREE
from tests.factories import build_town, make_department


def cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(voice_app)
    return app


def test_the_cli_loads_the_category_tree(settings, database: Database, tmp_path: Path) -> None:
    town = build_town(database)
    make_department(database, town, "org-housing")
    make_department(database, town, "org-police")
    good = tmp_path / "tree.json"
    good.write_text(json.dumps(TREE, ensure_ascii=False), encoding="utf-8")
    result = CliRunner().invoke(cli(), ["voice", "categories", str(good)])
    assert result.exit_code == 0 and "created 5" in result.output, result.output
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"categories": [{"code": "1", "name_zh": "x", "name_en": "x"}]}))
    assert CliRunner().invoke(cli(), ["voice", "categories", str(broken)]).exit_code == 1
    unknown = tmp_path / "unknown.json"
    unknown.write_text(
        json.dumps(
            {"categories": [{"code": "08", "name_zh": "x", "name_en": "x", "organization_code": "no"}]}
        )
    )
    assert CliRunner().invoke(cli(), ["voice", "categories", str(unknown)]).exit_code == 1
