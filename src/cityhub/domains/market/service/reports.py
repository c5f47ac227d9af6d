"""Merchant reports, shaped like WeChat's card datacube but including today: per day (or per batch, or per
store) the views, claims, redemptions, expiries and transfers, each as a count and as distinct people, the
value redeemed, and the conversion rates. Read straight from ``market_coupon_event`` through its covering
indexes, so today is as current as the last commit."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.orm import Session

from cityhub.domains.identity import Principal
from cityhub.domains.market import schemas
from cityhub.domains.market.models import Batch, CouponEvent, ReportDay, RollupMark, Store
from cityhub.domains.market.service.access import MANAGE, merchant_for
from cityhub.kernel.errors import ValidationProblem
from cityhub.kernel.i18n import gettext as _

MAX_DAYS = 62
KINDS = ("view", "claim", "redeem", "expire", "transfer")
Grouping = Literal["day", "batch", "store"]


@dataclass
class ReportRow:
    key: str  # the day (ISO), batch id or store id
    label: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    people: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    redeemed_value_cents: int = 0

    @property
    def claim_rate(self) -> float | None:
        """Of the people who looked, the share who claimed."""
        return _rate(self.people["claim"], self.people["view"])

    @property
    def redemption_rate(self) -> float | None:
        """Redemptions per claim in the same period."""
        return _rate(self.counts["redeem"], self.counts["claim"])


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True)
class ReportQuery:
    first: date
    last: date
    group: Grouping = "day"
    batch_id: int | None = None
    store_id: int | None = None

    def check(self) -> None:
        if self.last < self.first:
            raise ValidationProblem(_("The report ends before it starts."), field="to")
        if (self.last - self.first).days + 1 > MAX_DAYS:
            raise ValidationProblem(_("A report covers at most %(n)s days.", n=MAX_DAYS), field="from")


def report(session: Session, principal: Principal, merchant_id: int, query: ReportQuery) -> list[ReportRow]:
    merchant = merchant_for(session, principal, merchant_id, MANAGE)
    query.check()
    key_column = {"day": CouponEvent.day, "batch": CouponEvent.batch_id, "store": CouponEvent.store_id}[
        query.group
    ]
    statement = (
        select(
            key_column,
            CouponEvent.kind,
            func.count(),
            func.count(func.distinct(CouponEvent.person_id)),
            func.sum(CouponEvent.value_cents),
        )
        .where(
            CouponEvent.merchant_id == merchant.id,
            CouponEvent.day >= query.first,
            CouponEvent.day <= query.last,
            CouponEvent.kind.in_(KINDS),
        )
        .group_by(key_column, CouponEvent.kind)
    )
    if query.batch_id is not None:
        statement = statement.where(CouponEvent.batch_id == query.batch_id)
    if query.store_id is not None:
        statement = statement.where(CouponEvent.store_id == query.store_id)
    rows = _rows(session, merchant.id, query)
    rolled_to = (
        _rolled_to(session)
        if query.group == "day" and query.batch_id is None and query.store_id is None
        else None
    )
    if rolled_to is not None and rolled_to >= query.first:
        # Closed days from the daily rollup; only the days after it (today) from the events.
        statement = statement.where(CouponEvent.day > rolled_to)
        _count(rows, session.execute(_rolled(merchant.id, query.first, min(rolled_to, query.last))))
    _count(rows, session.execute(statement))
    return sorted(rows.values(), key=lambda row: row.key if query.group == "day" else int(row.key))


def _count(rows: dict[str, ReportRow], counted: Iterable[Sequence[Any]]) -> None:
    for key, kind, count, people, value in counted:
        if key is None:  # claims and views name no store
            continue
        row = rows.setdefault(str(key), ReportRow(str(key), str(key)))
        row.counts[kind] = count
        row.people[kind] = people
        if kind == "redeem":
            row.redeemed_value_cents = int(value or 0)


def _rolled_to(session: Session) -> date | None:
    return session.scalar(select(RollupMark.last_day).where(RollupMark.id == 1))


def _rolled(merchant_id: int, first: date, last: date) -> Select[date, str, int, int, int]:
    return select(
        ReportDay.day, ReportDay.kind, ReportDay.events, ReportDay.people, ReportDay.value_cents
    ).where(ReportDay.merchant_id == merchant_id, ReportDay.day >= first, ReportDay.day <= last)


def roll_up(session: Session, through: date) -> int:
    """Count every merchant's events of the days after the mark up to ``through`` into the daily rollup
    (days must be over: events are stamped with the day they happen); the rows written."""
    mark = _rolled_to(session)
    if mark is not None and mark >= through:
        return 0
    days = select(
        CouponEvent.merchant_id,
        CouponEvent.day,
        CouponEvent.kind,
        func.count(),
        func.count(func.distinct(CouponEvent.person_id)),
        func.coalesce(func.sum(CouponEvent.value_cents), 0),
    ).where(CouponEvent.day <= through)
    if mark is not None:
        days = days.where(CouponEvent.day > mark)
    rows = session.execute(days.group_by(CouponEvent.merchant_id, CouponEvent.day, CouponEvent.kind)).all()
    if rows:
        session.execute(
            insert(ReportDay),
            [
                {"merchant_id": m, "day": d, "kind": k, "events": n, "people": p, "value_cents": v}
                for m, d, k, n, p, v in rows
            ],
        )
    if mark is None:
        session.add(RollupMark(id=1, last_day=through))
    else:
        session.execute(update(RollupMark).where(RollupMark.id == 1).values(last_day=through))
    return len(rows)


def _rows(session: Session, merchant_id: int, query: ReportQuery) -> dict[str, ReportRow]:
    """Every day of the range (zeros included), or every batch or store of the merchant with its name."""
    if query.group == "day":
        days = [query.first + timedelta(days=n) for n in range((query.last - query.first).days + 1)]
        return {day.isoformat(): ReportRow(day.isoformat(), day.isoformat()) for day in days}
    table, name = (Batch, Batch.title) if query.group == "batch" else (Store, Store.name)
    named = session.execute(select(table.id, name).where(table.merchant_id == merchant_id))
    return {str(key): ReportRow(str(key), label) for key, label in named}


def to_csv(rows: list[ReportRow], group: Grouping) -> str:
    """The report as CSV (UTF-8 with a BOM, so spreadsheet programs read the Chinese names)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = [group, "name"]
    for kind in KINDS:
        header += [f"{kind}_count", f"{kind}_people"]
    writer.writerow([*header, "redeemed_value_yuan", "claim_rate", "redemption_rate"])
    for row in rows:
        cells: list[object] = [row.key, row.label]
        for kind in KINDS:
            cells += [row.counts[kind], row.people[kind]]
        writer.writerow(
            [
                *cells,
                f"{row.redeemed_value_cents / 100:.2f}",
                _blank(row.claim_rate),
                _blank(row.redemption_rate),
            ]
        )
    return "\ufeff" + buffer.getvalue()


def _blank(rate: float | None) -> str:
    return "" if rate is None else f"{rate:.4f}"


# Wire names of each kind's count and distinct-people columns.
COUNT_NAMES = {
    "view": "views",
    "claim": "claims",
    "redeem": "redemptions",
    "expire": "expiries",
    "transfer": "transfers",
}
PEOPLE_NAMES = {
    "view": "view",
    "claim": "claim",
    "redeem": "redemption",
    "expire": "expiry",
    "transfer": "transfer",
}


def shaped(merchant_id: int, query: ReportQuery, rows: list[ReportRow]) -> schemas.ReportOut:
    return schemas.ReportOut(
        merchant_id=merchant_id,
        first_day=query.first.isoformat(),
        last_day=query.last.isoformat(),
        group=query.group,
        rows=[
            schemas.ReportRowOut.model_validate(
                {
                    "key": row.key,
                    "label": row.label,
                    "redeemed_value_cents": row.redeemed_value_cents,
                    "claim_rate": row.claim_rate,
                    "redemption_rate": row.redemption_rate,
                    **{COUNT_NAMES[kind]: row.counts[kind] for kind in KINDS},
                    **{f"{PEOPLE_NAMES[kind]}_people": row.people[kind] for kind in KINDS},
                }
            )
            for row in rows
        ],
    )
