"""Residents' proposals on both databases: supports up to the threshold and the per-person cap, the city's
official answer with the project that carries a proposal out (its milestones and progress), comments,
flags and moderation, withdrawal; and the cap held under concurrent supports."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest

from cityhub.domains.identity import Principal
from cityhub.domains.voice import schemas
from cityhub.domains.voice.service import proposals
from cityhub.domains.voice.settings import VoiceSettings
from cityhub.kernel.errors import Conflict
from cityhub.kernel.settings import clear_settings_cache
from tests.domains.voice.hotline import API
from tests.factories import api_key_for, bearer, make_user

IDEA = {"title": "在河边加装路灯", "body": "滨江步道晚上太暗了，散步很不安全，建议每五十米装一盏路灯。"}
PARK = {"code": "park-2026", "name_zh": "滨江公园改造", "name_en": "Riverside park renovation"}


@pytest.fixture
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYHUB_VOICE__PROPOSAL_SUPPORT_THRESHOLD", "2")
    monkeypatch.setenv("CITYHUB_VOICE__SUPPORTS_PER_PERSON", "2")
    monkeypatch.setenv("CITYHUB_VOICE__FLAGS_TO_HIDE", "2")
    clear_settings_cache()


def propose(client, headers, **fields):  # type: ignore[no-untyped-def]
    made = client.post(f"{API}/proposals", json={**IDEA, **fields}, headers=headers)
    assert made.status_code == 201, made.text
    return made.json()


def inbox_topics(client, headers) -> list[str]:  # type: ignore[no-untyped-def]
    page = client.get("/api/v1/identity/me/notifications", headers=headers).json()
    return [item["topic"] for item in page["items"]]


def test_supports_reach_the_threshold_within_each_persons_cap(
    client, database, hotline, small_thresholds
) -> None:
    make_user(database, "third", [("resident", hotline.town.community_a)], name="王五")
    third = bearer(client, "third")
    idea = propose(client, hotline.resident, community=hotline.town.community_a.code)
    assert (idea["state"], idea["supports"], idea["threshold"], idea["author"]) == ("open", 0, 2, "张*")
    assert idea["community"] == hotline.town.community_a.code and idea["collecting"] and idea["mine"]
    url = f"{API}/proposals/{idea['id']}/support"

    own = client.put(url, headers=hotline.resident)
    assert own.status_code == 409 and own.json()["type"].endswith("own-proposal")
    first = client.put(url, headers=hotline.neighbour).json()
    assert (first["supports"], first["supported"], first["threshold_reached"], first["remaining"]) == (
        1,
        True,
        False,
        1,
    )
    assert client.put(url, headers=hotline.neighbour).status_code == 409  # once per person
    assert "voice.proposal.threshold" not in inbox_topics(client, hotline.resident)
    second = client.put(url, headers=third).json()
    assert (second["supports"], second["threshold_reached"]) == (2, True)
    assert "voice.proposal.threshold" in inbox_topics(client, hotline.resident)
    assert "voice.proposal.threshold" in inbox_topics(client, hotline.operator)  # who answers proposals

    taken_back = client.delete(url, headers=third).json()
    assert (taken_back["supports"], taken_back["threshold_reached"], taken_back["remaining"]) == (1, True, 2)
    assert client.delete(url, headers=third).status_code == 409

    # the cap: the neighbour has 2 supports in all
    others = [propose(client, hotline.resident, title=f"提议{n}号方案")["id"] for n in (2, 3)]
    assert client.put(f"{API}/proposals/{others[0]}/support", headers=hotline.neighbour).status_code == 200
    used_up = client.put(f"{API}/proposals/{others[1]}/support", headers=hotline.neighbour)
    assert used_up.status_code == 409 and used_up.json()["type"].endswith("supports-used-up")
    assert client.delete(url, headers=hotline.neighbour).status_code == 200  # frees one
    assert client.put(f"{API}/proposals/{others[1]}/support", headers=hotline.neighbour).status_code == 200

    machine = {"X-API-Key": api_key_for(database, hotline.town, ("voice.tickets.handle",))}
    assert client.put(url, headers=machine).status_code == 403  # a key is nobody
    assert client.put(url).status_code == 401
    assert client.put(f"{API}/proposals/999999/support", headers=third).status_code == 404
    ranked = client.get(f"{API}/proposals", params={"order": "supports"}).json()
    assert ranked["total"] == 3 and [p["supports"] for p in ranked["items"]] == [1, 1, 0]
    newest = client.get(f"{API}/proposals", params={"order": "newest", "limit": 1}).json()
    assert newest["items"][0]["id"] == others[1] and newest["items"][0]["supported"] is None


def test_bad_proposals_are_refused_with_clear_errors(client, hotline) -> None:
    assert client.post(f"{API}/proposals", json=IDEA).status_code == 401
    short = client.post(f"{API}/proposals", json={**IDEA, "body": "太暗"}, headers=hotline.resident)
    assert short.status_code == 422
    unknown = client.post(f"{API}/proposals", json={**IDEA, "community": "nowhere"}, headers=hotline.resident)
    assert unknown.status_code == 422 and "nowhere" in unknown.json()["detail"]
    extra = client.post(f"{API}/proposals", json={**IDEA, "supports": 99}, headers=hotline.resident)
    assert extra.status_code == 422
    assert client.get(f"{API}/proposals", params={"state": "lost"}).status_code == 422


def test_the_official_answer_links_the_project_whose_milestones_are_the_result(
    client, hotline, small_thresholds
) -> None:
    idea = propose(client, hotline.resident)
    assert client.put(f"{API}/proposals/{idea['id']}/support", headers=hotline.neighbour).status_code == 200
    assert client.post(f"{API}/projects", json=PARK, headers=hotline.operator).status_code == 200
    answer_url = f"{API}/proposals/{idea['id']}/answer"
    accepted = {"state": "accepted", "answer": "采纳，纳入公园改造一期。", "project": "park-2026"}
    assert client.post(answer_url, json=accepted, headers=hotline.resident).status_code == 403
    assert client.post(answer_url, json=accepted, headers=hotline.housing).status_code == 403
    rejected_with_project = {**accepted, "state": "rejected"}
    assert client.post(answer_url, json=rejected_with_project, headers=hotline.operator).status_code == 409
    unknown = client.post(answer_url, json={**accepted, "project": "nope"}, headers=hotline.operator)
    assert unknown.status_code == 404
    answered = client.post(answer_url, json=accepted, headers=hotline.operator).json()
    assert (answered["state"], answered["project"], answered["progress"]) == ("accepted", "park-2026", 0)
    assert not answered["collecting"]
    assert "voice.proposal.answered" in inbox_topics(client, hotline.resident)
    assert "voice.proposal.answered" in inbox_topics(client, hotline.neighbour)  # supporters are told
    late = client.put(f"{API}/proposals/{idea['id']}/support", headers=hotline.operator)
    assert late.status_code == 409 and late.json()["type"].endswith("not-collecting")
    taken_back = client.delete(f"{API}/proposals/{idea['id']}/support", headers=hotline.neighbour)
    assert taken_back.status_code == 409
    assert client.post(f"{API}/proposals/{idea['id']}/withdraw", headers=hotline.resident).status_code == 409

    plan = f"{API}/projects/park-2026/milestones"
    steps = [
        {"title": "设计方案公示", "due_on": "2026-12-20", "progress": 20},
        {"title": "路灯安装完成", "due_on": "2027-03-01", "progress": 80},
    ]
    assert client.post(plan, json=steps[0], headers=hotline.resident).status_code == 403
    made = [client.post(plan, json=step, headers=hotline.operator).json() for step in steps]
    assert client.post(plan, json={**steps[0], "progress": 120}, headers=hotline.operator).status_code == 422
    reached = client.post(
        f"{plan}/{made[1]['id']}/reached", json={"reached_on": "2027-02-27"}, headers=hotline.operator
    ).json()
    assert reached["progress"] == 80 and reached["milestones"][1]["reached_on"] == "2027-02-27"
    earlier = client.post(f"{plan}/{made[0]['id']}/reached", json={}, headers=hotline.operator).json()
    assert earlier["progress"] == 80  # progress never goes back
    again = client.post(f"{plan}/{made[0]['id']}/reached", json={}, headers=hotline.operator)
    assert again.status_code == 409
    assert client.post(f"{plan}/999999/reached", json={}, headers=hotline.operator).status_code == 404
    result = client.get(f"{API}/projects/park-2026/result").json()
    assert result["proposals"] == [idea["id"]] and [m["title"] for m in result["milestones"]] == [
        "设计方案公示",
        "路灯安装完成",
    ]
    assert client.get(f"{API}/proposals/{idea['id']}").json()["progress"] == 80


def test_comments_flags_and_moderation(client, database, hotline, small_thresholds) -> None:
    idea = propose(client, hotline.resident)
    thread = f"{API}/proposals/{idea['id']}/comments"
    rude = client.post(thread, json={"body": "这是广告：加微信买便宜货"}, headers=hotline.neighbour).json()
    assert rude["author"] == "李*" and not rude["official"]
    official = client.post(thread, json={"body": "感谢建议，我们已转交城管部门。"}, headers=hotline.operator)
    assert official.status_code == 201 and official.json()["official"]
    assert client.post(thread, json={"body": ""}, headers=hotline.neighbour).status_code == 422
    assert "voice.proposal.comment" in inbox_topics(client, hotline.resident)

    make_user(database, "third", [("resident", hotline.town.community_a)], name="王五")
    third = bearer(client, "third")
    spam = {"target": "comment", "id": rude["id"], "reason": "spam"}
    assert client.post(f"{API}/flags", json=spam, headers=hotline.resident).status_code == 204
    assert client.post(f"{API}/flags", json=spam, headers=hotline.resident).status_code == 409
    assert client.post(f"{API}/flags", json={**spam, "reason": "boring"}, headers=third).status_code == 422
    assert client.post(f"{API}/flags", json={**spam, "id": 999999}, headers=third).status_code == 404
    shown = client.get(thread).json()["items"]
    assert shown[0]["body"] and not shown[0]["hidden"]  # one flag does not hide
    assert client.post(f"{API}/flags", json={**spam, "reason": "offensive"}, headers=third).status_code == 204
    hidden = client.get(thread).json()["items"][0]
    assert hidden["hidden"] and hidden["body"] == ""  # two flags hide it until a moderator looks
    assert client.get(thread, headers=hotline.operator).json()["items"][0]["body"]  # moderators read it
    assert client.get(f"{API}/proposals/{idea['id']}").json()["comments"] == 1  # hidden ones not counted

    assert client.get(f"{API}/moderation", headers=hotline.housing).status_code == 403
    queue = client.get(f"{API}/moderation", headers=hotline.operator).json()
    assert queue["total"] == 1
    assert (queue["items"][0]["target"], queue["items"][0]["flags"]) == ("comment", 2)
    assert queue["items"][0]["reasons"] == {"spam": 1, "offensive": 1}
    moderation = f"{API}/moderation"
    keep = client.post(f"{moderation}/comment/{rude['id']}", json={"hide": False}, headers=hotline.operator)
    assert keep.status_code == 204
    assert not client.get(thread).json()["items"][0]["hidden"]  # restored
    assert client.get(f"{API}/moderation", headers=hotline.operator).json()["total"] == 0

    # the moderators hide a proposal: gone from the public, still shown to its author
    flag = {"target": "proposal", "id": idea["id"], "reason": "off_topic", "note": "与本市无关"}
    assert client.post(f"{API}/flags", json=flag, headers=third).status_code == 204
    hide = client.post(f"{moderation}/proposal/{idea['id']}", json={"hide": True}, headers=hotline.operator)
    assert hide.status_code == 204
    assert client.get(f"{API}/proposals/{idea['id']}").status_code == 404
    assert client.get(f"{API}/proposals/{idea['id']}", headers=hotline.resident).json()["hidden"]
    assert client.get(f"{API}/proposals").json()["total"] == 0
    assert "voice.moderation.hidden" in inbox_topics(client, hotline.resident)
    assert client.put(f"{API}/proposals/{idea['id']}/support", headers=third).status_code == 404
    assert client.post(thread, json={"body": "还在吗"}, headers=hotline.resident).status_code == 409


def test_withdrawing_gives_the_supporters_their_supports_back(client, hotline, small_thresholds) -> None:
    idea = propose(client, hotline.resident)
    url = f"{API}/proposals/{idea['id']}/support"
    assert client.put(url, headers=hotline.neighbour).json()["remaining"] == 1
    assert client.post(f"{API}/proposals/{idea['id']}/withdraw", headers=hotline.neighbour).status_code == 403
    withdrawn = client.post(f"{API}/proposals/{idea['id']}/withdraw", headers=hotline.resident).json()
    assert withdrawn["state"] == "withdrawn" and not withdrawn["collecting"]
    other = propose(client, hotline.resident, title="增加公共座椅")
    counts = client.put(f"{API}/proposals/{other['id']}/support", headers=hotline.neighbour).json()
    assert counts["remaining"] == 1  # the withdrawn proposal's support was given back
    answer = {"state": "rejected", "answer": "已撤回"}
    assert (
        client.post(f"{API}/proposals/{idea['id']}/answer", json=answer, headers=hotline.operator).status_code
        == 409
    )


def test_concurrent_supports_never_pass_the_cap(database, hotline, monkeypatch) -> None:
    """Eight proposals supported at once by one person whose cap is three: exactly three supports."""
    monkeypatch.setenv("CITYHUB_VOICE__SUPPORTS_PER_PERSON", "3")
    clear_settings_cache()
    settings = VoiceSettings()
    author_account, author_person = make_user(database, "author", [("resident", hotline.town.community_a)])
    fan_account, fan_person = make_user(database, "fan", [("resident", hotline.town.community_a)])
    author = Principal("account", author_account.id, "author", author_person.id, ())
    fan = Principal("account", fan_account.id, "fan", fan_person.id, ())
    with database.unit_of_work() as session:
        ids = [proposals.propose(session, author, schemas.ProposalIn(**IDEA), settings).id for _ in range(8)]
    start = Barrier(len(ids))

    def support(proposal_id: int) -> str:
        start.wait()
        try:
            with database.unit_of_work() as session:
                proposals.support(session, fan, proposal_id, settings)
        except Conflict:
            return "refused"
        return "supported"

    with ThreadPoolExecutor(max_workers=len(ids)) as pool:
        outcomes = list(pool.map(support, ids))
    assert sorted(outcomes) == ["refused"] * 5 + ["supported"] * 3
    with database.reading() as session:
        total = sum(proposals.one(session, None, proposal_id).supports for proposal_id in ids)
        assert total == 3
        assert proposals.supports_of(session, fan, ids[0], settings).remaining == 0
