"""A real NGSI-LD client, ngsildclient 0.5.2 (Orange), drives a real cityhub server on both databases.

ngsildclient pins httpx 0.23, so it lives in its own virtualenv (`make interop`, part of `make test`); the
scenario script runs there and reports what the client saw.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cityhub.kernel.db import Database
from tests.domains.context.conftest import CONTEXT_PERMISSIONS, api_key_for
from tests.factories import build_town
from tests.live_server import live_server, server_env

ROOT = Path(__file__).resolve().parents[2]
INTEROP_PYTHON = ROOT / ".venv-interop" / "bin" / "python"
SCENARIO = Path(__file__).with_name("ngsildclient_scenario.py")

pytestmark = pytest.mark.interop


def test_ngsildclient_creates_reads_updates_queries_batches_and_deletes(
    database: Database, tmp_path: Path
) -> None:
    if not INTEROP_PYTHON.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("the interop virtualenv is missing: `make interop`")
        pytest.skip("the interop virtualenv is missing: `make interop`")
    key = api_key_for(database, build_town(database), CONTEXT_PERMISSIONS)
    url = database.engine.url.render_as_string(hide_password=False)
    env = server_env(url, tmp_path, CITYHUB_JOBS__EMBEDDED_WORKER="false")
    with live_server(env, tmp_path / "server.log") as base:
        run = subprocess.run(
            [str(INTEROP_PYTHON), str(SCENARIO)],
            env={"CITYHUB_URL": base, "CITYHUB_API_KEY": key, "PATH": os.environ.get("PATH", "")},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["connected"] is True
    assert seen["fetched_pm25"] == 12.0
    assert seen["fetched_relationship"] == "urn:ngsi-ld:Device:1"
    assert seen["updated_pm25"] == 48.0
    assert (seen["batch_ok"], seen["batch_errors"]) == (6, 0)
    assert seen["count_all"] == 7
    assert seen["polluted"] == [f"urn:ngsi-ld:AirQualityObserved:Station:{n}" for n in (1, 4, 5, 6, 7)]
    assert (seen["exists_before_delete"], seen["exists_after_delete"]) == (True, False)
    assert seen["count_after_delete"] == 6
