"""Citizens' data requests ("data wishes"): residents file them, everyone sees the board (most votes first),
signed-in people vote once and may take the vote back — votes at the same moment are neither lost nor
counted twice (threads, both databases); the department asked (the operator for none) answers planned,
fulfilled by a published resource, or declined with a reason; the filer is told (API and pages)."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import func, select

from cityhub.domains.exchange.models import DataWish, DataWishVote
from cityhub.domains.exchange.service import wishes
from cityhub.domains.identity import Principal
from cityhub.kernel.db import Database
from cityhub.kernel.errors import Conflict
from cityhub.kernel.models import AuditRecord
from tests.domains.exchange.world import API, Exchange, account, build_exchange, notices, published
from tests.web.factories import HTML, as_user, csrf_token, page_of, post_form

WISH = {"title": "公共停车场实时空位", "description": "希望开放各停车场的实时空位数据，方便出行。"}


def _file(client, world: Exchange, headers: dict[str, str] | None = None, **overrides: Any):  # type: ignore[no-untyped-def]
    return client.post(f"{API}/wishes", json={**WISH, **overrides}, headers=headers or world.resident)


def _answer(client, wish_id: int, headers: dict[str, str], **body: Any):  # type: ignore[no-untyped-def]
    return client.post(f"{API}/wishes/{wish_id}/answer", json=body, headers=headers)


def test_a_wish_is_voted_for_and_answered_by_the_department_asked(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    filed = _file(client, world, department="stats")
    assert filed.status_code == 201, filed.text
    wish = filed.json()
    assert (wish["votes"], wish["status"], wish["department"], wish["mine"]) == (0, "open", "stats", True)
    assert notices(database, "exchange.wish.filed") == [account(database, "stats1")]
    other = _file(client, world, title="学校学位分布", department="civil").json()

    vote = f"{API}/wishes/{wish['id']}/vote"
    first = client.post(vote, headers=world.resident)
    assert first.status_code == 200 and (first.json()["votes"], first.json()["voted"]) == (1, True)
    twice = client.post(vote, headers=world.resident)
    assert twice.status_code == 409 and twice.json()["type"].endswith("already-voted")
    assert client.post(vote, headers=world.consumer).json()["votes"] == 2
    assert client.post(vote).status_code == 401
    assert client.post(f"{API}/wishes/999999/vote", headers=world.resident).status_code == 404

    board = client.get(f"{API}/wishes").json()  # anyone, most votes first
    assert [(found["id"], found["votes"], found["voted"]) for found in board["items"]] == [
        (wish["id"], 2, False),
        (other["id"], 0, False),
    ]
    newest = client.get(f"{API}/wishes", params={"sort": "new"}, headers=world.resident).json()
    assert [found["id"] for found in newest["items"]] == [other["id"], wish["id"]]
    assert newest["items"][1]["voted"] is True
    taken_back = client.delete(vote, headers=world.consumer)
    assert taken_back.status_code == 200 and taken_back.json()["votes"] == 1
    none_left = client.delete(vote, headers=world.consumer)
    assert none_left.status_code == 409 and none_left.json()["type"].endswith("not-voted")

    url = wish["id"]
    for stranger in (world.resident, world.consumer):  # the filer; a department not asked
        assert _answer(client, url, stranger, decision="planned", answer="x").status_code == 403
    assert _answer(client, url, world.owner, decision="planned").status_code == 422  # say what
    assert _answer(client, url, world.owner, decision="declined", answer=" ").status_code == 422
    planned = _answer(client, url, world.owner, decision="planned", answer="计划于下季度开放")
    assert planned.status_code == 200 and planned.json()["status"] == "planned"
    assert client.post(vote, headers=world.other).json()["votes"] == 2  # planned: still collecting votes
    assert _answer(client, url, world.owner, decision="fulfilled").status_code == 422  # which resource?
    unknown = _answer(client, url, world.owner, decision="fulfilled", resource="no-such-code")
    assert unknown.status_code == 422
    closed = published(client, world, "stats-closed", open_class="closed")
    assert _answer(client, url, world.owner, decision="fulfilled", resource=closed).status_code == 422
    code = published(client, world)
    fulfilled = _answer(client, url, world.owner, decision="fulfilled", resource=code)
    assert fulfilled.status_code == 200, fulfilled.text
    assert (fulfilled.json()["status"], fulfilled.json()["resource"]) == ("fulfilled", code)
    assert client.post(vote, headers=world.operator).json()["type"].endswith("closed")
    assert _answer(client, url, world.owner, decision="declined", answer="x").status_code == 409
    assert notices(database, "exchange.wish.answered") == [account(database, "resident")] * 2
    assert client.get(f"{API}/wishes/{wish['id']}").json()["resource_name"] == "各区常住人口"
    done = client.get(f"{API}/wishes", params={"status": "fulfilled"}).json()
    assert [found["id"] for found in done["items"]] == [wish["id"]] and done["total"] == 1
    with database.reading() as session:
        actions = sorted(
            session.scalars(
                select(AuditRecord.action).where(
                    AuditRecord.object_id == str(wish["id"]), AuditRecord.object_type == "exchange_data_wish"
                )
            )
        )
    assert actions == ["exchange.wish.filed", "exchange.wish.fulfilled", "exchange.wish.planned"]


def test_wishes_are_checked_and_unaddressed_ones_go_to_the_operator(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    for bad in (
        {"title": "  "},
        {"description": ""},
        {"title": "x" * 201},
        {"description": "x" * 4001},
        {"votes": 9},
    ):
        answer = _file(client, world, **bad)
        assert answer.status_code == 422, (bad, answer.text)
    assert _file(client, world, department="nowhere").status_code == 404
    assert client.post(f"{API}/wishes", json=WISH).status_code == 401
    assert client.get(f"{API}/wishes", params={"status": "lost"}).status_code == 422
    assert client.get(f"{API}/wishes/999999").status_code == 404

    wish = _file(client, world).json()  # to no department
    assert wish["department"] is None
    assert notices(database, "exchange.wish.filed") == [account(database, "operator1")]
    assert _answer(client, wish["id"], world.owner, decision="declined", answer="x").status_code == 403
    declined = _answer(
        client, wish["id"], world.operator, decision="declined", answer="涉及个人隐私，不予开放"
    )
    assert declined.status_code == 200 and declined.json()["answer"] == "涉及个人隐私，不予开放"
    assert client.get(f"{API}/wishes", params={"status": "declined"}).json()["total"] == 1
    assert client.get(f"{API}/wishes", params={"status": "open"}).json()["total"] == 0
    addressed = _file(client, world, department="stats").json()
    planned = _answer(client, addressed["id"], world.operator, decision="planned", answer="已转交")
    assert planned.status_code == 200  # the operator acts for every department


def _voters(count: int) -> list[Principal]:
    return [Principal("account", 50_000 + n, f"voter{n}", None, ()) for n in range(count)]


def _vote_once(database: Database, change: Any, principal: Principal, wish_id: int) -> str:
    try:
        with database.unit_of_work() as session:
            change(session, principal, wish_id)
        return "ok"
    except Conflict as refusal:
        return refusal.slug


def _counted(database: Database, wish_id: int) -> tuple[int, int]:
    with database.reading() as session:
        votes = session.scalar(select(DataWish.votes).where(DataWish.id == wish_id))
        rows = session.scalar(
            select(func.count()).select_from(DataWishVote).where(DataWishVote.wish_id == wish_id)
        )
    return int(votes or 0), int(rows or 0)


def test_votes_at_the_same_moment_are_neither_lost_nor_counted_twice(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    wish_id = _file(client, world, department="stats").json()["id"]
    voters = _voters(40)
    twice = [voter for voter in voters for _ in range(3)]  # each tries three times at once
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = Counter(pool.map(lambda voter: _vote_once(database, wishes.vote, voter, wish_id), twice))
    assert outcomes == Counter({"ok": 40, "already-voted": 80})
    assert _counted(database, wish_id) == (40, 40)
    leaving = voters[:25]
    with ThreadPoolExecutor(max_workers=16) as pool:
        taken_back = Counter(
            pool.map(lambda voter: _vote_once(database, wishes.unvote, voter, wish_id), leaving * 2)
        )
    assert taken_back == Counter({"ok": 25, "not-voted": 25})
    assert _counted(database, wish_id) == (15, 15)


def test_the_board_page_files_wishes_and_takes_votes(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    published(client, world)
    as_user(client, None)
    assert 'href="/data/requests"' in page_of(client, "/data").text
    board = page_of(client, "/data/requests")
    assert "Log in to ask for data or vote" in board.text and 'id="wish-form"' not in board.text

    as_user(client, "resident")
    board = page_of(client, "/data/requests")
    assert 'id="wish-form"' in board.text and '<option value="stats">' in board.text  # departments with data
    empty = post_form(client, "/data/requests", "/data/requests", {"title": " ", "description": "x"})
    assert empty.status_code == 422 and 'role="alert"' in empty.text
    unknown = post_form(client, "/data/requests", "/data/requests", {**WISH, "department": "nowhere"})
    assert unknown.status_code == 404 and WISH["title"] in unknown.text  # the form is kept
    sent = post_form(client, "/data/requests", "/data/requests", {**WISH, "department": "stats"})
    assert sent.status_code == 303
    with database.reading() as session:
        wish_id = session.scalars(select(DataWish.id)).one()
    board = page_of(client, "/data/requests")
    assert WISH["title"] in board.text and f'id="wish-{wish_id}"' in board.text and "0 votes" in board.text
    token = csrf_token(board.text)
    voted = client.post(
        f"/data/requests/{wish_id}/vote",
        data={"csrf_token": token},
        headers={**HTML, "HX-Request": "true"},
    )
    assert voted.status_code == 200 and "1 votes" in voted.text and "Take my vote back" in voted.text
    again = client.post(
        f"/data/requests/{wish_id}/vote", data={"csrf_token": token}, headers={**HTML, "HX-Request": "true"}
    )
    assert "1 votes" in again.text and 'role="alert"' in again.text  # voted already
    withdrawn = client.post(
        f"/data/requests/{wish_id}/vote",
        data={"csrf_token": token, "withdraw": "yes"},
        headers=HTML,
        follow_redirects=False,
    )
    assert withdrawn.status_code == 303
    assert _counted(database, wish_id) == (0, 0)

    as_user(client, "civil1")  # a department not asked: nothing to answer
    assert WISH["title"] not in page_of(client, "/console/exchange").text
    action = f"/console/exchange/wishes/{wish_id}/answer"
    assert (
        post_form(client, "/console/exchange", action, {"decision": "planned", "answer": "x"}).status_code
        == 403
    )
    as_user(client, "stats1")
    console = page_of(client, "/console/exchange")
    assert 'id="wishes"' in console.text and WISH["title"] in console.text
    refused = post_form(client, "/console/exchange", action, {"decision": "declined", "answer": ""})
    assert refused.status_code == 422 and f'id="wish-{wish_id}"' in refused.text
    answered = post_form(
        client, "/console/exchange", action, {"decision": "planned", "answer": "明年一季度开放"}
    )
    assert answered.status_code == 303 and answered.headers["location"].endswith("#wishes")
    as_user(client, None)
    board = page_of(client, "/data/requests?status=planned")
    assert "明年一季度开放" in board.text and "Planned" in board.text
    assert WISH["title"] not in page_of(client, "/data/requests?status=declined").text
