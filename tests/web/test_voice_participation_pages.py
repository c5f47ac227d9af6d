"""Participation pages: a resident proposes, a neighbour supports it in place (htmx) and comments, the
operator answers it officially with the project that carries it out, a flagged comment reaches the
moderators' queue, and the project page shows progress, milestones and the rating form."""

from __future__ import annotations

from fastapi.testclient import TestClient

from cityhub.kernel.db import Database
from tests.domains.voice.hotline import API
from tests.factories import bearer, build_town, make_user
from tests.web.factories import HTML, csrf_token, login, post_form

PARK = {"code": "park-2026", "name_zh": "滨江公园改造", "name_en": "Riverside park renovation"}


def test_propose_support_comment_answer_and_moderate(client: TestClient, database: Database) -> None:
    town = build_town(database)
    make_user(database, "operator1", [("operator", town.city)])
    make_user(database, "resident", [("resident", town.community_a)], household=town.household_a)
    make_user(database, "neighbour", [("resident", town.community_b)], name="李四")
    operator = bearer(client, "operator1")
    assert client.post(f"{API}/projects", json=PARK, headers=operator).status_code == 200

    anonymous = client.get("/voice/participate", headers=HTML)
    assert anonymous.status_code == 200 and "滨江公园改造" in anonymous.text  # public

    login(client, "resident")
    too_short = post_form(
        client, "/voice/proposals/new", "/voice/proposals", {"title": "路灯", "body": "太暗"}
    )
    assert too_short.status_code == 422 and 'role="alert"' in too_short.text and "太暗" in too_short.text
    made = post_form(
        client,
        "/voice/proposals/new",
        "/voice/proposals",
        {"title": "在河边加装路灯", "body": "滨江步道晚上太暗了，建议每五十米装一盏路灯。"},
    )
    assert made.status_code == 303
    page_url = made.headers["location"]
    proposal_id = int(page_url.rsplit("/", 1)[1])
    own = client.get(page_url, headers=HTML)
    assert "在河边加装路灯" in own.text and "撤回我的提议" in own.text and "/support" not in own.text
    client.post("/logout", data={"csrf_token": csrf_token(own.text)}, headers=HTML)

    login(client, "neighbour")
    page = client.get(page_url, headers=HTML)
    assert 'hx-post="/voice/proposals/' in page.text
    swapped = client.post(
        f"{page_url}/support",
        data={"csrf_token": csrf_token(page.text)},
        headers={**HTML, "HX-Request": "true"},
    )
    assert swapped.status_code == 200 and 'id="support-box"' in swapped.text and "收回支持" in swapped.text
    assert "<html" not in swapped.text  # a fragment for htmx
    commented = post_form(client, page_url, f"{page_url}/comments", {"body": "加微信买便宜货"})
    assert commented.status_code == 303 and "#comment-" in commented.headers["location"]
    comment_id = int(commented.headers["location"].rsplit("-", 1)[1])
    flagged = post_form(
        client,
        page_url,
        f"{page_url}/flags",
        {"target": "comment", "target_id": str(comment_id), "reason": "spam"},
    )
    assert flagged.status_code == 303
    assert "版主" in client.get(flagged.headers["location"], headers=HTML).text
    bad = post_form(
        client, page_url, f"{page_url}/flags", {"target": "comment", "target_id": "1", "reason": "meh"}
    )
    assert bad.status_code == 422
    assert client.get("/console/voice/moderation", headers=HTML).status_code == 403
    client.post("/logout", data={"csrf_token": csrf_token(page.text)}, headers=HTML)

    login(client, "operator1")
    queue = client.get("/console/voice/moderation", headers=HTML)
    assert queue.status_code == 200 and "加微信买便宜货" in queue.text and "垃圾信息" in queue.text
    queue_url = "/console/voice/moderation"
    hidden = post_form(client, queue_url, f"{queue_url}/comment/{comment_id}", {"hide": "yes"})
    assert hidden.status_code == 303
    assert "暂无待审内容" in client.get("/console/voice/moderation", headers=HTML).text
    answered = post_form(
        client,
        page_url,
        f"{page_url}/answer",
        {"state": "accepted", "answer": "采纳，纳入公园改造。", "project": "park-2026"},
    )
    assert answered.status_code == 303
    shown = client.get(page_url, headers=HTML).text
    assert "采纳，纳入公园改造。" in shown and "已采纳" in shown and "/voice/projects/park-2026" in shown
    assert "加微信买便宜货" in shown  # moderators still read hidden comments

    milestone = {"title": "设计方案公示", "due_on": "2026-12-20", "progress": 30}
    step = client.post(f"{API}/projects/park-2026/milestones", json=milestone, headers=operator).json()
    client.post(f"{API}/projects/park-2026/milestones/{step['id']}/reached", json={}, headers=operator)
    project = client.get("/voice/projects/park-2026", headers=HTML)
    assert project.status_code == 200 and "设计方案公示" in project.text and "30%" in project.text
    assert "在河边加装路灯" in project.text  # the proposal it carries out
    rated = post_form(client, "/voice/projects/park-2026", "/voice/projects/park-2026/rating", {"level": "4"})
    assert rated.status_code == 303
    assert "您的评价：4" in client.get(rated.headers["location"], headers=HTML).text
    assert client.get("/voice/projects/nope", headers=HTML).status_code == 404
    assert client.get(f"/voice/proposals/{proposal_id + 1000}", headers=HTML).status_code == 404
