"""Reading a version's rows: keyset pages by row number, and every row in order for a download."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.domains.exchange.models import Row

STREAM_BATCH = 5_000


def page(
    session: Session, version_id: int, after: int, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """Up to ``limit`` rows after row number ``after``, and the number to continue after (None: the end)."""
    rows = session.execute(
        select(Row.row_no, Row.data)
        .where(Row.version_id == version_id, Row.row_no > after)
        .order_by(Row.row_no)
        .limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return [data for _no, data in rows], (rows[-1][0] if more else None)


def every_row(session: Session, version_id: int) -> Iterator[dict[str, Any]]:
    """All rows in order, read in keyset batches (a download of any size in bounded memory)."""
    after = 0
    while True:
        rows, after_next = page(session, version_id, after, STREAM_BATCH)
        yield from rows
        if after_next is None:
            return
        after = after_next
