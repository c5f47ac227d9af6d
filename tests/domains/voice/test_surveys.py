"""Surveys on both databases: the operator publishes, each resident answers once (every kind of question,
one 422 naming every bad answer), community surveys stay within the community, the results add up (free
text for the organisers only), answered questions stay fixed, and two answers at once count once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select

from cityhub.domains.identity import Grant, Principal
from cityhub.domains.voice import schemas
from cityhub.domains.voice.models import Survey, SurveyAnswer, SurveyResponse
from cityhub.domains.voice.service import surveys
from cityhub.kernel.db import Database
from cityhub.kernel.errors import Conflict
from tests.domains.voice.hotline import API, Hotline
from tests.factories import api_key_for, build_town, make_user

NOW = datetime.now(UTC)


def when(days: float) -> str:
    return (NOW + timedelta(days=days)).isoformat()


PARK: dict[str, Any] = {
    "code": "park-2026",
    "title": "滨江公园改造意见征集",
    "description": "公园明年改造，请告诉我们您的想法。",
    "opens_at": when(-1),
    "closes_at": when(14),
    "questions": [
        {
            "key": "visits",
            "kind": "single",
            "text": "您多久去一次滨江公园？",
            "options": [
                {"key": "daily", "label": "每天"},
                {"key": "weekly", "label": "每周"},
                {"key": "rarely", "label": "很少"},
            ],
        },
        {
            "key": "wants",
            "kind": "multiple",
            "text": "您最希望增加哪些设施？（最多两项）",
            "max_choices": 2,
            "options": [
                {"key": "toilets", "label": "公厕"},
                {"key": "benches", "label": "座椅"},
                {"key": "lights", "label": "路灯"},
                {"key": "playground", "label": "儿童游乐场"},
            ],
        },
        {"key": "score", "kind": "scale", "text": "您对公园现状的满意度", "scale_min": 1, "scale_max": 5},
        {"key": "ideas", "kind": "text", "text": "其他建议", "required": False},
    ],
}


def survey(**changes: Any) -> dict[str, Any]:
    return {**PARK, **changes}


def publish(client: TestClient, hotline: Hotline, **changes: Any) -> dict[str, Any]:
    published = client.post(f"{API}/surveys", json=survey(**changes), headers=hotline.operator)
    assert published.status_code == 200, published.text
    return dict(published.json())


def fields_of(response: Response) -> list[str]:
    """The fields a 422 problem names: its list of errors, or its one field."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    return [error["field"] for error in problem["errors"]] if "errors" in problem else [problem["field"]]


def test_only_organisers_publish_and_bad_definitions_are_refused(
    client: TestClient, hotline: Hotline
) -> None:
    assert client.post(f"{API}/surveys", json=PARK, headers=hotline.housing).status_code == 403
    assert client.post(f"{API}/surveys", json=PARK, headers=hotline.resident).status_code == 403
    assert client.post(f"{API}/surveys", json=PARK).status_code == 401
    one_option = [{**PARK["questions"][0], "options": [{"key": "daily", "label": "每天"}]}]
    twice = [PARK["questions"][2], {**PARK["questions"][3], "key": "score"}]
    for broken in (
        survey(questions=one_option),
        survey(questions=twice),
        survey(closes_at=when(-2)),
        survey(questions=[{**PARK["questions"][2], "scale_min": 5, "scale_max": 5}]),
        survey(questions=[]),
    ):
        assert client.post(f"{API}/surveys", json=broken, headers=hotline.operator).status_code == 422
    naive = survey(opens_at="2026-10-01T08:00:00", closes_at="2026-10-08T08:00:00")
    refused = client.post(f"{API}/surveys", json=naive, headers=hotline.operator)
    assert refused.status_code == 422
    assert [error["location"][-1] for error in refused.json()["errors"]] == ["opens_at", "closes_at"]
    unknown = survey(community="nowhere")
    assert fields_of(client.post(f"{API}/surveys", json=unknown, headers=hotline.operator)) == ["community"]
    nul = survey(title="公园\u0000")
    assert fields_of(client.post(f"{API}/surveys", json=nul, headers=hotline.operator)) == ["title"]

    created = publish(client, hotline)
    assert (created["state"], created["responses"], created["community"]) == ("open", 0, None)
    assert [question["key"] for question in created["questions"]] == ["visits", "wants", "score", "ideas"]
    assert client.get(f"{API}/surveys/park-2026").json()["answered"] is None  # anonymous
    assert client.get(f"{API}/surveys/park-2026", headers=hotline.resident).json()["answered"] is False
    assert client.get(f"{API}/surveys/nope").status_code == 404
    assert client.get(f"{API}/surveys/%00").status_code == 404


def test_residents_answer_once_and_the_results_add_up(
    client: TestClient, database: Database, hotline: Hotline
) -> None:
    publish(client, hotline)
    url = f"{API}/surveys/park-2026/responses"
    good = {"visits": "daily", "wants": ["toilets", "benches"], "score": 4, "ideas": "  多装几盏路灯  "}
    assert client.post(url, json={"answers": good}).status_code == 401
    machine = {"X-API-Key": api_key_for(database, hotline.town, ("voice.tickets.handle",))}
    assert client.post(url, json={"answers": good}, headers=machine).status_code == 403  # a key is nobody

    everything_wrong = {
        "visits": "never",
        "wants": ["toilets", "benches", "lights"],
        "score": 9,
        "ideas": "x" * 4001,
        "colour": "blue",
    }
    refused = client.post(url, json={"answers": everything_wrong}, headers=hotline.resident)
    assert fields_of(refused) == ["colour", "visits", "wants", "score", "ideas"]
    assert refused.json()["type"].endswith("/validation-error")
    details = {error["field"]: error["detail"] for error in refused.json()["errors"]}
    assert "never" in details["visits"] and "2" in details["wants"] and "1" in details["score"]
    kinds_wrong = {"visits": ["daily"], "wants": ["lights", "lights"], "score": "4", "ideas": "a\u0000b"}
    refused = client.post(url, json={"answers": kinds_wrong}, headers=hotline.resident)
    assert fields_of(refused) == ["visits", "wants", "score", "ideas"]
    missing = client.post(url, json={"answers": {"ideas": "", "wants": []}}, headers=hotline.resident)
    assert fields_of(missing) == ["visits", "wants", "score"]  # the optional one may stay empty
    assert client.post(url, json={"answers": "nonsense"}, headers=hotline.resident).status_code == 422
    with database.reading() as session:  # nothing of the refused answers was kept
        assert session.scalar(select(func.count()).select_from(SurveyResponse)) == 0

    answered = client.post(url, json={"answers": good}, headers=hotline.resident)
    assert answered.status_code == 201, answered.text
    assert answered.json()["answered"] is True and answered.json()["responses"] == 1
    again = client.post(url, json={"answers": {**good, "score": 1}}, headers=hotline.resident)
    assert again.status_code == 409 and again.json()["type"].endswith("/already-answered")
    other = {"visits": "weekly", "wants": ["benches"], "score": 5}  # no free text: it is optional
    assert client.post(url, json={"answers": other}, headers=hotline.neighbour).status_code == 201
    staff = {"visits": "daily", "wants": ["lights"], "score": 2, "ideas": "晚上太黑"}
    assert client.post(url, json={"answers": staff}, headers=hotline.housing).status_code == 201

    public = client.get(f"{API}/surveys/park-2026/results", headers=hotline.resident)
    assert public.status_code == 200
    results = public.json()
    assert (results["code"], results["responses"]) == ("park-2026", 3)
    visits, wants, score, ideas = results["questions"]
    assert visits["options"] == {"daily": 2, "weekly": 1, "rarely": 0} and visits["answered"] == 3
    assert wants["options"] == {"toilets": 1, "benches": 2, "lights": 1, "playground": 0}
    assert wants["answered"] == 3 and wants["distribution"] is None and wants["average"] is None
    assert score["distribution"] == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}
    assert score["average"] == 3.67 and score["answered"] == 3 and score["options"] is None
    assert ideas["answered"] == 2 and ideas["texts"] is None  # free text is for the organisers
    assert client.get(f"{API}/surveys/park-2026/results").json()["questions"][3]["texts"] is None
    organisers = client.get(f"{API}/surveys/park-2026/results", headers=hotline.operator).json()
    assert organisers["questions"][3]["texts"] == ["晚上太黑", "多装几盏路灯"]  # latest first, trimmed
    assert organisers["questions"][:3] == results["questions"][:3]
    assert client.get(f"{API}/surveys/park-2026", headers=hotline.neighbour).json()["answered"] is True
    assert "person" not in public.text and "resident" not in public.text  # nobody's answers are named

    with database.reading() as session:
        assert session.scalar(select(Survey.responses)) == 3
        assert session.scalar(select(func.count()).select_from(SurveyAnswer)) == 12  # one row per pick


def test_a_community_survey_stays_within_its_community(client: TestClient, hotline: Hotline) -> None:
    publish(client, hotline, code="courtyard", community=hotline.town.community_a.code, opens_at=when(-2))
    publish(client, hotline)  # the whole city's, opened later
    seen = [s["code"] for s in client.get(f"{API}/surveys", headers=hotline.resident).json()]
    assert seen == ["park-2026", "courtyard"]  # the newest opening first
    assert [s["code"] for s in client.get(f"{API}/surveys", headers=hotline.neighbour).json()] == [
        "park-2026"
    ]
    assert [s["code"] for s in client.get(f"{API}/surveys").json()] == ["park-2026"]
    every = client.get(f"{API}/surveys", headers=hotline.operator).json()
    assert [(s["code"], s["community"]) for s in every] == [("park-2026", None), ("courtyard", "Ma")]

    answers = {"answers": {"visits": "rarely", "wants": ["playground"], "score": 3}}
    for path in ("", "/results"):
        assert client.get(f"{API}/surveys/courtyard{path}", headers=hotline.neighbour).status_code == 404
        assert client.get(f"{API}/surveys/courtyard{path}").status_code == 404
    refused = client.post(f"{API}/surveys/courtyard/responses", json=answers, headers=hotline.neighbour)
    assert refused.status_code == 404
    accepted = client.post(f"{API}/surveys/courtyard/responses", json=answers, headers=hotline.resident)
    assert accepted.status_code == 201 and accepted.json()["community"] == "Ma"


def test_only_open_surveys_take_answers(
    client: TestClient, hotline: Hotline, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert publish(client, hotline, code="later", opens_at=when(3), closes_at=when(10))["state"] == "upcoming"
    assert publish(client, hotline, code="past", opens_at=when(-10), closes_at=when(-3))["state"] == "closed"
    answers = {"answers": {"visits": "daily", "wants": ["toilets"], "score": 3}}
    early = client.post(f"{API}/surveys/later/responses", json=answers, headers=hotline.resident)
    assert early.status_code == 409 and early.json()["type"].endswith("/survey-not-open")
    late = client.post(f"{API}/surveys/past/responses", json=answers, headers=hotline.resident)
    assert late.status_code == 409 and late.json()["type"].endswith("/survey-closed")

    monkeypatch.setattr(surveys, "utcnow", lambda: NOW + timedelta(days=4))
    assert client.get(f"{API}/surveys/later").json()["state"] == "open"
    assert (
        client.post(f"{API}/surveys/later/responses", json=answers, headers=hotline.resident).status_code
        == 201
    )
    monkeypatch.setattr(surveys, "utcnow", lambda: NOW + timedelta(days=10))  # the closing moment itself
    assert client.get(f"{API}/surveys/later").json()["state"] == "closed"
    closed = client.post(f"{API}/surveys/later/responses", json=answers, headers=hotline.neighbour)
    assert closed.status_code == 409


def test_private_results_are_for_the_organisers(client: TestClient, hotline: Hotline) -> None:
    publish(client, hotline, results_public=False)
    answers = {"answers": {"visits": "daily", "wants": ["toilets"], "score": 3, "ideas": "谢谢"}}
    assert (
        client.post(f"{API}/surveys/park-2026/responses", json=answers, headers=hotline.resident).status_code
        == 201
    )
    nobody: dict[str, str] = {}
    for headers in (hotline.resident, nobody):
        hidden = client.get(f"{API}/surveys/park-2026/results", headers=headers)
        assert hidden.status_code == 403 and hidden.json()["type"].endswith("/results-private")
    kept = client.get(f"{API}/surveys/park-2026/results", headers=hotline.operator).json()
    assert kept["responses"] == 1 and kept["questions"][3]["texts"] == ["谢谢"]


def test_answered_questions_stay_while_the_title_may_change(client: TestClient, hotline: Hotline) -> None:
    publish(client, hotline)
    fewer = survey(questions=PARK["questions"][:3])
    assert (
        client.post(f"{API}/surveys", json=fewer, headers=hotline.operator).json()["questions"][2]["key"]
        == "score"
    )
    answers = {"answers": {"visits": "daily", "wants": ["toilets"], "score": 3}}
    assert (
        client.post(f"{API}/surveys/park-2026/responses", json=answers, headers=hotline.resident).status_code
        == 201
    )
    changed = client.post(f"{API}/surveys", json=survey(), headers=hotline.operator)
    assert changed.status_code == 409 and changed.json()["type"].endswith("/survey-answered")
    retitled = client.post(
        f"{API}/surveys",
        json={**fewer, "title": "滨江公园改造（延期）", "closes_at": when(30)},
        headers=hotline.operator,
    )
    assert retitled.status_code == 200, retitled.text
    assert retitled.json()["title"] == "滨江公园改造（延期）" and retitled.json()["responses"] == 1
    assert client.get(f"{API}/surveys/park-2026", headers=hotline.resident).json()["answered"] is True


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
def test_two_answers_at_once_count_once(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both requests pass the "not answered yet" check together; the unique pair lets exactly one in."""
    town = build_town(database)
    account, person = make_user(database, "resident", [("resident", town.community_a)])
    organiser = Principal(
        "system",
        0,
        "tests",
        None,
        (Grant("operator", town.city.id, town.city.path, None, frozenset({surveys.MANAGE})),),
    )
    resident = Principal("account", account.id, "resident", person.id, ())
    with database.unit_of_work() as session:
        surveys.save(session, organiser, schemas.SurveyIn.model_validate(PARK))
    together = threading.Barrier(2, timeout=10)
    waited = threading.local()

    def now_together() -> datetime:
        if not getattr(waited, "done", False):
            waited.done = True
            together.wait()
        return datetime.now(UTC)

    monkeypatch.setattr(surveys, "utcnow", now_together)
    given = schemas.SurveyAnswersIn(answers={"visits": "daily", "wants": ["toilets"], "score": 4})

    def answer() -> str:
        try:
            with database.unit_of_work() as session:
                surveys.answer(session, resident, "park-2026", given)
        except Conflict as conflict:
            return conflict.slug
        return "answered"

    runs: list[Callable[[], str]] = [answer, answer]
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(future.result() for future in [pool.submit(run) for run in runs])
    assert outcomes == ["already-answered", "answered"]
    with database.reading() as session:
        assert session.scalar(select(func.count()).select_from(SurveyResponse)) == 1
        assert session.scalar(select(Survey.responses)) == 1
        assert session.scalar(select(func.count()).select_from(SurveyAnswer)) == 3
