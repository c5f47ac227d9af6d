"""The open-data portal (list, dataset page with preview, CSV/JSON downloads of open resources only), the
provider's keyset pages of rows, and `cityhub exchange load` with its report (both databases)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from typer.testing import CliRunner

from cityhub.cli.main import app as cli_app
from tests.domains.exchange.world import API, build_exchange, published, registered
from tests.web.factories import HTML


def test_the_portal_shows_open_data_and_serves_downloads(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = published(client, world)
    published(client, world, "stats-income", name="居民收入", open_class="closed")
    client.cookies.set("cityhub_locale", "en")
    portal = client.get("/data", headers=HTML)
    assert (
        portal.status_code == 200 and "stats-population" in portal.text and "stats-income" not in portal.text
    )
    page = client.get(f"/data/{code}", headers=HTML)
    assert page.status_code == 200 and "滨江区" in page.text and "1187000" in page.text
    assert client.get("/data/stats-income", headers=HTML).status_code == 404
    assert client.get("/data/stats-income.csv").status_code == 404
    download = client.get(f"/data/{code}.csv")
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert [row["district"] for row in rows] == ["西湖区", "滨江区", "上城区"] and rows[0][
        "population"
    ] == "1187000"
    as_json = client.get(f"/data/{code}.json").json()
    assert as_json[1] == {
        "district": "滨江区",
        "year": 2025,
        "population": 541000,
        "elderly_share": 0.12,
        "surveyed_on": "2025-11-01",
    }


def test_the_provider_reads_its_rows_by_keyset_pages(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = published(client, world)
    first = client.get(f"{API}/resources/{code}/rows", params={"limit": 2}, headers=world.owner).json()
    assert [row["district"] for row in first["rows"]] == ["西湖区", "滨江区"] and first["next_after"] == 2
    rest = client.get(f"{API}/resources/{code}/rows", params={"after": 2}, headers=world.owner).json()
    assert [row["district"] for row in rest["rows"]] == ["上城区"] and rest["next_after"] is None
    assert client.get(f"{API}/resources/{code}/rows", headers=world.consumer).status_code == 403
    empty = registered(client, world, "stats-empty")
    assert client.get(f"{API}/resources/{empty}/rows", headers=world.owner).status_code == 404


def test_the_cli_loads_a_file_with_a_report(client, database, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = registered(client, world)
    good = tmp_path / "population.csv"
    good.write_text(
        "district,year,population,elderly_share,surveyed_on\n"
        + "".join(f"区{n},2025,{1000 + n},0.1,2025-11-01\n" for n in range(12_000)),
        encoding="utf-8",
    )
    runner = CliRunner()
    loaded = runner.invoke(cli_app, ["exchange", "load", code, str(good), "--note", "first"])
    assert loaded.exit_code == 0, loaded.output
    assert "12,000 rows" in loaded.output
    bad = tmp_path / "bad.csv"
    bad.write_text("district,year,population\n区,x,1\n", encoding="utf-8")
    refused = runner.invoke(cli_app, ["exchange", "load", code, str(bad)])
    assert refused.exit_code == 1 and "year" in refused.output
    versions = client.get(f"{API}/resources/{code}/versions", headers=world.owner).json()
    assert [(v["number"], v["valid"], v["rows"]) for v in versions] == [(2, False, 0), (1, True, 12_000)]
    missing = runner.invoke(cli_app, ["exchange", "load", "no-such-code", str(good)])
    assert missing.exit_code == 2
