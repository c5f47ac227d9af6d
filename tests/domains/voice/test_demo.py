"""The demo city's hotline: `cityhub demo` loads the tree with its emergencies and questions, the knowledge
base, today's duty roster, and tickets at every stage with one emergency waiting on the board."""

from __future__ import annotations

from datetime import date

from rich.progress import Progress
from sqlalchemy import func, select

from cityhub.cli.demo import seed_city
from cityhub.domains.identity import system_principal
from cityhub.domains.voice.models import Duty, Ticket
from cityhub.domains.voice.service import categories, emergencies, knowledge
from cityhub.domains.voice.service.alarm import DISPATCH
from cityhub.kernel.db import Database
from cityhub.kernel.demo import DemoSize
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
