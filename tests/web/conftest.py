"""Page-test fixtures: a small town with a resident family and an operator, and clients logged in as them."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from cityhub.kernel.db import Database
from tests.factories import Town, build_town, make_user
from tests.web.factories import Family, login, seed_family


@pytest.fixture
def town(database: Database) -> Town:
    return build_town(database)


@pytest.fixture
def family(database: Database, town: Town) -> Family:
    return seed_family(database, town)


@pytest.fixture
def operator(database: Database, town: Town) -> None:
    make_user(database, "operator", [("operator", town.city)], name="周敏")


@pytest.fixture
def resident_client(client: TestClient, family: Family) -> TestClient:
    assert login(client, "resident").status_code == 303
    return client


@pytest.fixture
def operator_client(client: TestClient, operator: None) -> TestClient:
    assert login(client, "operator").status_code == 303
    return client
