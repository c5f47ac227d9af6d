"""The demo city's service catalogue: loaded by `cityhub demo`, consistent, and searchable."""

from __future__ import annotations

from collections import Counter
from datetime import date

from rich.progress import Progress

from cityhub.cli.demo import seed_city
from cityhub.domains.services.demo import demo_catalogue
from cityhub.domains.services.service import catalogue
from cityhub.kernel.db import Database
from cityhub.kernel.demo import DemoSize
from cityhub.kernel.pagination import PageParams
from cityhub.kernel.settings import Settings


def test_the_demo_catalogue_covers_every_kind_department_and_life_event() -> None:
    given = demo_catalogue()
    kinds = Counter(item.kind for item in given.items)
    assert set(kinds) == {"information", "query", "form", "appointment", "bill"}
    assert min(kinds.values()) >= 5
    by_department = Counter(item.department for item in given.items)
    assert {d.code for d in given.departments} == set(by_department) and min(by_department.values()) >= 3
    used_events = {code for item in given.items for code in item.life_events}
    assert used_events == {event.code for event in given.life_events}


def test_cityhub_demo_seeds_a_searchable_catalogue(database: Database, settings: Settings) -> None:
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
        assert len(catalogue.departments(session)) == len(demo_catalogue().departments)
        for query, expected in (
            ("公积金提取", "gjj-"),
            ("违章", "jj-violations"),
            ("passport", "crj-passport"),
        ):
            found, total = catalogue.find_items(
                session, catalogue.ItemFilter(text=query), PageParams(limit=5, offset=0)
            )
            assert total and found[0].code.startswith(expected), f"{query} -> {[i.code for i in found]}"
