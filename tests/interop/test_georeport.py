"""The PyPI Open311 client georeport 0.3.1 reads a real cityhub server's services, service definition and
requests in JSON and in XML, on both databases. georeport cannot POST, so requests are created with our own
form-encoded POST (httpx) through the same server, as a partner app would.

georeport pins requests/xmltodict ranges of its own, so it runs in the interop virtualenv.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from cityhub.domains.identity import system_principal
from cityhub.domains.voice import schemas
from cityhub.domains.voice.service import categories
from cityhub.kernel.db import Database
from tests.domains.voice.test_open311 import STREETLIGHT
from tests.factories import api_key_for, build_town, make_department
from tests.live_server import live_server, server_env

ROOT = Path(__file__).resolve().parents[2]
INTEROP_PYTHON = ROOT / ".venv-interop" / "bin" / "python"
SCENARIO = Path(__file__).with_name("georeport_scenario.py")

pytestmark = pytest.mark.interop


def test_georeport_reads_services_and_requests_in_json_and_xml(database: Database, tmp_path: Path) -> None:
    if not INTEROP_PYTHON.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("the interop virtualenv is missing: `make interop`")
        pytest.skip("the interop virtualenv is missing: `make interop`")
    town = build_town(database)
    make_department(database, town, "org-housing")
    with database.unit_of_work() as session:
        root = system_principal(session, "tests", [categories.MANAGE])
        categories.import_categories(session, root, schemas.CategoriesIn.model_validate(STREETLIGHT))
    key = api_key_for(database, town, ("voice.open311.submit",))
    url = database.engine.url.render_as_string(hide_password=False)
    env = server_env(url, tmp_path, CITYHUB_JOBS__EMBEDDED_WORKER="false")
    with live_server(env, tmp_path / "server.log") as base:
        form = {
            "api_key": key,
            "service_code": "01.02",
            "lat": "30.25",
            "long": "120.2",
            "attribute[pole]": "P1",
        }
        created = [httpx.post(f"{base}/open311/v2/requests.json", data=form, timeout=10) for _ in range(2)]
        assert [response.status_code for response in created] == [201, 201], created[0].text
        numbers = sorted(response.json()[0]["service_request_id"] for response in created)
        run = subprocess.run(
            [str(INTEROP_PYTHON), str(SCENARIO)],
            env={"CITYHUB_URL": base, "CITYHUB_REQUEST_ID": numbers[0], "PATH": os.environ.get("PATH", "")},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    for output_format in ("json", "xml"):
        observed = seen[output_format]
        assert observed["service_codes"] == ["01.02"]
        assert observed["attribute_codes"] == ["pole", "state", "hazards", "height"]
        assert observed["open_requests"] == numbers
        assert (observed["one_status"], observed["one_service"]) == ("open", "01.02")
