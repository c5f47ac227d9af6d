"""The PyPI CKAN client ckanapi 4.11 reads a real cityhub server's open data through the CKAN Action API, on
both databases: datasets, a search with facets, a dataset, organizations and rows with datastore_search, and
CKAN's errors as ckanapi's exceptions (NotFound, ValidationError, NotAuthorized).

ckanapi is a client of another ecosystem, so it runs in the interop virtualenv like the other clients.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cityhub.kernel.db import Database
from tests.domains.exchange.world import build_exchange, published
from tests.live_server import live_server, server_env

ROOT = Path(__file__).resolve().parents[2]
INTEROP_PYTHON = ROOT / ".venv-interop" / "bin" / "python"
SCENARIO = Path(__file__).with_name("ckanapi_scenario.py")

pytestmark = pytest.mark.interop


def test_ckanapi_reads_the_open_data_and_maps_ckans_errors(
    client, database: Database, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    if not INTEROP_PYTHON.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("the interop virtualenv is missing: `make interop`")
        pytest.skip("the interop virtualenv is missing: `make interop`")
    world = build_exchange(client, database)
    published(client, world)
    published(client, world, "stats-income", name="居民收入", open_class="closed")
    url = database.engine.url.render_as_string(hide_password=False)
    env = server_env(url, tmp_path, CITYHUB_JOBS__EMBEDDED_WORKER="false")
    with live_server(env, tmp_path / "server.log") as base:
        run = subprocess.run(
            [str(INTEROP_PYTHON), str(SCENARIO)],
            env={"CITYHUB_URL": base, "PATH": os.environ.get("PATH", "")},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["packages"] == seen["with_a_key"] == ["stats-population"]
    assert (seen["search_count"], seen["search_names"]) == (1, ["stats-population"])
    assert seen["organization_facet"] == {"stats": 1}
    assert seen["package"]["title"] == "各区常住人口" and seen["package"]["organization"] == "stats"
    assert seen["package"]["tags"] == ["人口", "老龄化"]
    assert seen["package"]["download"].endswith("/data/stats-population.csv")
    assert seen["organizations"] == ["stats"]
    assert seen["rows"]["total"] == 2
    assert seen["rows"]["records"] == [
        {
            "_id": 3,
            "district": "上城区",
            "year": 2025,
            "population": 1326000,
            "elderly_share": 0.24,
            "surveyed_on": "2025-11-02",
        }
    ]
    assert seen["closed"]["raised"] == "NotFound" and "stats-income" in seen["closed"]["message"]
    assert seen["bad_sort"] == {"raised": "ValidationError", "fields": ["__type", "message", "sort"]}
    assert seen["write"] == {"raised": "NotAuthorized", "type": "Authorization Error"}
