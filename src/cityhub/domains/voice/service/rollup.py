"""The assessment's rollup of closed tickets (service/assessment.py reads it with a live pass over the rest).

A closed ticket is final: no step of the workflow moves it again (a callback of 1-2 reopens a *replied*
ticket, before it is closed; dispatch and merges start from open tickets). Its figures no longer change with
time either: the workflow closes only answered tickets, and signed ones (the knowledge base signs and
answers at once), so the "… or past its time" terms of the response and on-time rates are settled. Its
counts are therefore kept, in the transaction that closes it, per local day received and per department,
category and type (``voice_assessment_rollup``) and per community (``voice_assessment_community_rollup``).
The one later change that matters is an extension approved after the ticket closed: the deadline decides
whether it was answered in time, so that step takes its counts out and puts them back.

Counting is an upsert (``INSERT … SELECT … ON CONFLICT DO UPDATE SET n = n + excluded.n``) from the ticket's
row, by the statements the rebuild runs over every closed ticket, so counts kept and counts rebuilt cannot
drift apart, and two app processes closing tickets of one group at once both count (PostgreSQL locks the
group's row for the second; SQLite has one writer). The days are the city's (``CITYHUB_TIMEZONE``): after a
change of zone, and after tickets were written behind the workflow's back (bulk imports, the demo, the
benchmark's filler), ``rebuild`` (``cityhub voice rollup-rebuild``) counts everything afresh.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Date, Select, Table, delete, func, insert, literal, or_, select, text
from sqlalchemy.orm import Session

from cityhub.domains.voice.models import TICKET_STATUSES, CommunityRollup, ScoreRollup, Ticket
from cityhub.kernel.db import is_postgres, upsert_into, utcnow
from cityhub.kernel.workdays import DaySpan

SETTLED = "closed"
# what the live pass reads: everything else but merged duplicates, which count nowhere
LIVE_STATUSES = tuple(status for status in TICKET_STATUSES if status not in (SETTLED, "merged"))
SATISFIED_LEVEL = 4
NO_DEPARTMENT = 0


def _count(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    """``count(*) FILTER (WHERE …)`` (PostgreSQL; SQLite ≥ 3.30): on SQLite a fifth faster than SUM(CASE)."""
    return func.count().filter(condition)


def score_counts(now: datetime) -> dict[str, ColumnElement[Any]]:
    """The counts of ``assessment.Scores`` by name, as aggregates over ``voice_ticket`` rows (the rules are
    in service/assessment.py's docstring)."""
    signed = Ticket.signed_at.is_not(None)
    replied = Ticket.replied_at.is_not(None)
    closed = Ticket.status == SETTLED
    return {
        "received": func.count(),
        "closed": _count(closed),
        "sign_due": _count(or_(signed, Ticket.sign_due_at < now)),  # for a department (the reader drops it)
        "signed_in_time": _count(Ticket.signed_at <= Ticket.sign_due_at),
        "judged": _count(or_(replied, Ticket.deadline_at < now)),
        "answered_in_time": _count(Ticket.replied_at <= Ticket.deadline_at),  # NULL (not answered): not
        "due": _count(or_(closed, Ticket.deadline_at < now)),
        "callbacks": func.count(Ticket.satisfaction),
        "satisfied": _count(Ticket.satisfaction >= SATISFIED_LEVEL),
    }


def count_closed(session: Session, ticket: Ticket, tz: str, sign: int = 1) -> None:
    """Count a ticket this transaction has just closed into the rollup (``sign`` -1: take it out again)."""
    session.flush()  # the counts are read from the ticket's row
    day = ticket.created_at.astimezone(ZoneInfo(tz)).date()
    for table, rows in _closed(day, sign, Ticket.id == ticket.id):
        upsert = upsert_into(session, table).from_select(list(rows.selected_columns.keys()), rows)
        counters = [column.name for column in table.columns if not column.primary_key]
        session.execute(
            upsert.on_conflict_do_update(
                index_elements=list(table.primary_key.columns),
                set_={name: table.c[name] + upsert.excluded[name] for name in counters},
            )
        )


def rebuild(session: Session, tz: str) -> int:
    """Count every closed ticket afresh, one statement per local day (the midnights computed here in the
    city's zone, so the same SQL is exact on both databases); the number of closed tickets counted."""
    if is_postgres(session):
        # A closing waits for the rebuild: if the rebuild cannot see it yet (not committed), it counts
        # itself afterwards; if it committed before, the rebuild counts it.
        session.execute(
            text(f"LOCK TABLE {ScoreRollup.__tablename__}, {CommunityRollup.__tablename__} IN EXCLUSIVE MODE")
        )
    session.execute(delete(ScoreRollup))
    session.execute(delete(CommunityRollup))
    first, last = session.execute(
        select(func.min(Ticket.created_at), func.max(Ticket.created_at)).where(Ticket.status == SETTLED)
    ).one()
    if first is None:
        return 0
    zone = ZoneInfo(tz)
    for day in DaySpan(first.astimezone(zone).date(), last.astimezone(zone).date()).days():
        received = (
            Ticket.created_at >= datetime.combine(day, time(), zone),
            Ticket.created_at < datetime.combine(day + timedelta(days=1), time(), zone),
        )
        for table, rows in _closed(day, 1, *received):
            session.execute(insert(table).from_select(list(rows.selected_columns.keys()), rows))
    return int(session.scalar(select(func.coalesce(func.sum(ScoreRollup.closed), 0))) or 0)


def _closed(
    day: date, sign: int, *where: ColumnElement[bool]
) -> tuple[tuple[Table, Select[*tuple[Any, ...]]], ...]:
    """Each rollup table with the select of its rows (columns named as the table's) counting the closed
    tickets received on ``day`` among those ``where`` picks (``sign`` -1: negated, to take them out)."""
    department = func.coalesce(Ticket.organization_id, NO_DEPARTMENT)
    settled = (Ticket.status == SETTLED, *where)
    counts = score_counts(utcnow())
    scores = (
        select(
            literal(day, Date).label("day"),
            department.label("organization_id"),
            Ticket.category_id.label("category_id"),
            Ticket.type.label("type"),
            *((count if sign > 0 else -count).label(name) for name, count in counts.items()),
        )
        .where(*settled)
        .group_by(department, Ticket.category_id, Ticket.type)
    )
    places = (
        select(
            literal(day, Date).label("day"),
            Ticket.org_unit_id.label("org_unit_id"),
            department.label("organization_id"),
            (func.count() if sign > 0 else -func.count()).label("closed"),
        )
        .where(*settled, Ticket.org_unit_id.is_not(None))
        .group_by(Ticket.org_unit_id, department)
    )
    return (cast(Table, ScoreRollup.__table__), scores), (cast(Table, CommunityRollup.__table__), places)
