"""The survey page: a resident sees the form (every kind of question), a bad form comes back with 422, the
alert naming the bad answers and what was ticked; a good one is thanked for and shows the results as bars;
a second answer is refused."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from cityhub.kernel.db import Database
from tests.domains.voice.hotline import API, Hotline, build_hotline
from tests.domains.voice.test_surveys import PARK, when
from tests.web.factories import HTML, csrf_token, login

PAGE = "/voice/surveys/park-2026"
PAGE_API = f"{API}/surveys/park-2026"
ENGLISH = {**HTML, "Accept-Language": "en"}


@pytest.fixture
def hotline(client: TestClient, database: Database) -> Hotline:
    return build_hotline(client, database)


def send(client: TestClient, fields: dict[str, str | list[str]]) -> Response:
    token = csrf_token(client.get(PAGE, headers=HTML).text)
    return client.post(PAGE, data={**fields, "csrf_token": token}, headers=ENGLISH, follow_redirects=False)


def test_a_resident_answers_on_the_page_once_and_sees_the_results(
    client: TestClient, hotline: Hotline
) -> None:
    assert client.post(f"{API}/surveys", json=PARK, headers=hotline.operator).status_code == 200
    login(client, "resident")

    form = client.get(PAGE, headers=HTML)
    assert form.status_code == 200 and "滨江公园改造意见征集" in form.text
    assert f'action="{PAGE}"' in form.text and "标 * 的为必答题" in form.text
    assert 'type="radio" name="visits" value="daily"' in form.text
    assert 'type="checkbox" name="wants" value="playground"' in form.text
    assert all(f'type="radio" name="score" value="{n}"' in form.text for n in range(1, 6))
    assert '<textarea id="q-ideas" name="ideas"' in form.text
    assert "您多久去一次滨江公园？ *" in form.text and "其他建议 *" not in form.text

    wrong = send(client, {"visits": "", "wants": ["toilets", "benches", "lights"], "score": "lots"})
    assert wrong.status_code == 422 and 'role="alert"' in wrong.text
    assert "Some answers need correcting." in wrong.text
    assert "您多久去一次滨江公园？: This question must be answered." in wrong.text
    assert "Pick at most 2 options." in wrong.text and "Give a whole number from 1 to 5." in wrong.text
    assert 'value="lights" checked' in wrong.text  # what was ticked comes back
    assert "Thank you" not in wrong.text

    sent = send(
        client, {"visits": "weekly", "wants": ["toilets", "benches"], "score": "4", "ideas": "多些树荫"}
    )
    assert sent.status_code == 303 and sent.headers["location"] == PAGE
    thanked = client.get(PAGE, headers=ENGLISH)
    assert "Thank you for answering this survey." in thanked.text and 'name="visits"' not in thanked.text
    assert "Results" in thanked.text and "Answered by 1." in thanked.text
    assert 'style="width: 100.0%' in thanked.text and 'style="width: 0.0%' in thanked.text
    assert "Average: 4.0" in thanked.text
    assert "多些树荫" not in thanked.text  # free text is for the organisers
    assert "感谢您填写本问卷！" in client.get(PAGE, headers=HTML).text

    again = send(client, {"visits": "daily", "wants": ["lights"], "score": "1"})
    assert again.status_code == 409 and 'role="alert"' in again.text
    assert "You have already answered this survey." in again.text
    results = client.get(f"{API}/surveys/park-2026/results", headers=hotline.operator).json()
    assert results["responses"] == 1 and results["questions"][2]["distribution"]["4"] == 1
    assert results["questions"][3]["texts"] == ["多些树荫"]
    assert client.get("/voice/surveys/nope", headers=HTML).status_code == 404


def test_anyone_sees_a_survey_and_its_public_results_once_ended(client: TestClient, hotline: Hotline) -> None:
    assert client.post(f"{API}/surveys", json=PARK, headers=hotline.operator).status_code == 200
    answers = {"visits": "daily", "wants": ["toilets"], "score": 4}
    answered = client.post(f"{PAGE_API}/responses", json={"answers": answers}, headers=hotline.resident)
    assert answered.status_code == 201
    open_page = client.get(PAGE, headers=HTML)
    assert open_page.status_code == 200 and f"/login?next={PAGE}" in open_page.text  # log in to answer
    assert 'name="visits"' not in open_page.text and "每天" not in open_page.text.split("<h1>")[1]
    ended = {**PARK, "opens_at": when(-3), "closes_at": when(-1)}
    assert client.post(f"{API}/surveys", json=ended, headers=hotline.operator).status_code == 200
    results = client.get(PAGE, headers=HTML)
    assert results.status_code == 200 and "已截止" in results.text and 'name="visits"' not in results.text
    assert "%" in results.text  # the bars of the public results
    private = {**ended, "results_public": False}
    assert client.post(f"{API}/surveys", json=private, headers=hotline.operator).status_code == 200
    assert client.get(PAGE, headers=HTML).status_code == 200  # the survey, without its results
