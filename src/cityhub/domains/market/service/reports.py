"""Merchant reports, shaped like WeChat's card datacube but including today: per day (or per batch, or per
store) the views, claims, redemptions, expiries and transfers, each as a count and as distinct people, the
value redeemed, and the conversion rates. Read straight from ``market_coupon_event`` through its covering
indexes, so today is as current as the last commit."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityhub.domains.identity import Principal
from cityhub.domains.market import schemas
from cityhub.domains.market.models import Batch, CouponEvent, Store
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
    for key, kind, count, people, value in session.execute(statement):
        if key is None:  # claims and views name no store
            continue
        row = rows.setdefault(str(key), ReportRow(str(key), str(key)))
        row.counts[kind] = count
        row.people[kind] = people
        if kind == "redeem":
            row.redeemed_value_cents = int(value or 0)
    return sorted(rows.values(), key=lambda row: row.key if query.group == "day" else int(row.key))


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
