"""Public ratings of city projects on both databases: the operator lists projects, each resident rates once
(rating again replaces), anyone sees the summary, and the evaluation domain reads it from the public face."""

from __future__ import annotations

from datetime import timedelta

from cityhub.domains.voice import project_rating_summaries
from cityhub.kernel.db import utcnow
from tests.domains.voice.hotline import API
from tests.factories import api_key_for

PARK = {
    "code": "park-2026",
    "name_zh": "滨江公园改造",
    "name_en": "Riverside park renovation",
    "department": "org-housing",
}


def test_residents_rate_projects_once_and_anyone_sees_the_summary(client, database, hotline) -> None:
    assert client.post(f"{API}/projects", json=PARK, headers=hotline.housing).status_code == 403
    created = client.post(f"{API}/projects", json=PARK, headers=hotline.operator)
    assert created.status_code == 200 and created.json()["ratings"] == 0 and created.json()["average"] is None
    url = f"{API}/projects/park-2026/rating"
    assert (
        client.put(url, json={"level": 2, "comment": "施工太吵"}, headers=hotline.resident).status_code == 200
    )
    again = client.put(url, json={"level": 5, "comment": "建好了很漂亮"}, headers=hotline.resident).json()
    assert again["ratings"] == 1 and again["my_level"] == 5  # the second rating replaced the first
    other = client.put(url, json={"level": 4}, headers=hotline.neighbour).json()
    assert other["ratings"] == 2 and other["average"] == 4.5
    assert other["distribution"] == {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1}
    public = client.get(f"{API}/projects").json()
    assert [(p["code"], p["ratings"], p["my_level"]) for p in public] == [("park-2026", 2, None)]
    assert client.put(url, json={"level": 6}, headers=hotline.resident).status_code == 422
    machine = {"X-API-Key": api_key_for(database, hotline.town, ("voice.tickets.handle",))}
    assert client.put(url, json={"level": 3}, headers=machine).status_code == 403  # a key is nobody
    assert (
        client.put(f"{API}/projects/nope/rating", json={"level": 3}, headers=hotline.resident).status_code
        == 404
    )
    assert client.put(url, json={"level": 3}).status_code == 401

    with database.reading() as session:
        summaries = project_rating_summaries(session)
        assert [(s.code, s.ratings, s.average, s.distribution[5]) for s in summaries] == [
            ("park-2026", 2, 4.5, 1)
        ]
        later = project_rating_summaries(session, since=utcnow() + timedelta(minutes=1))
        assert later[0].ratings == 0 and later[0].average is None
