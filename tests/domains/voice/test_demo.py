"""The demo city's hotline: `cityhub demo` loads the tree with its emergencies and questions, the knowledge
base, today's duty roster, and tickets at every stage with one emergency waiting on the board; projects,
proposals at every state and a comment waiting for the moderators."""

from __future__ import annotations

from datetime import date

from rich.progress import Progress
from sqlalchemy import func, select

from cityhub.cli.demo import seed_city
from cityhub.domains.identity import system_principal
from cityhub.domains.voice.models import Duty, Ticket
from cityhub.domains.voice.service import (
    categories,
    emergencies,
    knowledge,
    projects,
    proposals,
    surveys,
)
from cityhub.domains.voice.service.alarm import DISPATCH
from cityhub.kernel.db import Database
from cityhub.kernel.demo import DemoSize
from cityhub.kernel.pagination import PageParams
from cityhub.kernel.settings import Settings


def test_cityhub_demo_seeds_the_hotline(database: Database, settings: Settings) -> None:
    seed_city(
        database,
        settings,
        DemoSize.TINY,
        7,
        reset=False,
        progress=Progress(disable=True),
        today=date(2026, 1, 1),
    )
    with database.reading() as session:
        tree = {category.code: category for category in categories.categories(session)}
        assert {code for code, category in tree.items() if category.emergency} == {
            "01.03",
            "02.03",
            "05.03",
            "05.04",
        }
        assert [attribute.code for attribute in tree["02.04"].attributes] == ["pole", "state"]
        assert knowledge.answers(session, "社保卡丢了")[0].title == "社保卡丢了怎么补办？"
        assert session.scalar(select(func.count()).select_from(Duty)) == 2
        assert session.scalar(select(func.count()).select_from(Ticket)) == 7
        operator = system_principal(session, "tests", [DISPATCH])
        board = emergencies.board(session, operator)
        assert [alarm.category_name for alarm in board] == ["燃气泄漏"] and board[0].acknowledged_at is None


def test_cityhub_demo_seeds_participation(database: Database, settings: Settings) -> None:
    today = date(2026, 1, 1)
    seed_city(database, settings, DemoSize.TINY, 7, reset=False, progress=Progress(disable=True), today=today)
    with database.reading() as session:
        park = projects.detail(session, "park-riverside", None)
        assert park.progress == 60 and [m.reached_on is not None for m in park.milestones] == [
            True,
            True,
            False,
        ]
        assert park.ratings > 0 and park.average is not None
        found, total = proposals.listing(session, None, PageParams(limit=50), None, "supports")
        assert total == 5
        states = {proposal.title: proposal.state for proposal in found}
        assert (
            states["滨江步道加装路灯"] == "accepted" and states["把广场舞时间限制在晚上九点前"] == "rejected"
        )
        lights = next(proposal for proposal in found if proposal.state == "accepted")
        assert (
            lights.threshold_reached and lights.project == "park-riverside" and park.proposals == [lights.id]
        )
        moderator = system_principal(session, "tests", [proposals.MODERATE])
        waiting, _total = proposals.flagged(session, moderator, PageParams())
        assert [item.reasons for item in waiting] == [{"spam": 1}]
        states = {found.code: (found.state, found.responses) for found in surveys.listing(session, None)}
        assert states["elderly-care-2026"][0] == "open" and states["park-plan"][0] == "closed"
        assert states["park-plan"][1] > 0
        results = surveys.results(session, None, "park-plan")
        assert sum((results.questions[0].options or {}).values()) == results.responses
