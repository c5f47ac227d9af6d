"""The operator's revenue: commission rules, a double-entry ledger, monthly statements and reconciliation.

Money facts are transactions whose entries balance (debits = credits): a commission on a redemption
(the merchant owes it: debit ``merchant_receivable``, credit ``commission_revenue``), a featured-listing fee
(``listing_revenue``), a merchant's payment (debit ``operator_cash``, credit ``merchant_receivable``). A
commission is posted by the handler of ``market.coupons_redeemed``, after the redemption committed; its
``source`` names the redemption, so a handler run twice posts once. ``reconcile`` recomputes every
redemption's commission from the rules and checks every transaction balances.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, insert, select
from sqlalchemy.orm import Session

from cityhub.domains.identity import Principal, can_citywide, require_citywide
from cityhub.domains.market import schemas
from cityhub.domains.market.events import CouponsRedeemed
from cityhub.domains.market.models import (
    LEDGER_KINDS,
    Batch,
    CommissionRule,
    Coupon,
    LedgerEntry,
    LedgerTransaction,
    Merchant,
)
from cityhub.domains.market.service.access import MANAGE, merchant_for
from cityhub.kernel import audit, pdf
from cityhub.kernel.db import upsert_into, utcnow
from cityhub.kernel.errors import NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.i18n import lazy_gettext as _l
from cityhub.kernel.settings import Settings, get_settings
from cityhub.kernel.web import CSV, money

REVENUE = "market.revenue.manage"
RECEIVABLE = "merchant_receivable"


@dataclass(frozen=True)
class Posting:
    account: str
    debit_cents: int = 0
    credit_cents: int = 0


def month_of(moment: datetime, tz: str) -> str:
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m")


def post(
    session: Session,
    merchant_id: int,
    kind: str,
    source: str,
    postings: Sequence[Posting],
    *,
    at: datetime,
    tz: str,
    memo: str = "",
    rule_id: int | None = None,
    basis_cents: int = 0,
) -> int | None:
    """Record one balanced transaction, once per ``source``; its id, or None when it was posted before."""
    debits, credits = sum(p.debit_cents for p in postings), sum(p.credit_cents for p in postings)
    if debits != credits or debits <= 0:
        raise ValueError(f"unbalanced or empty transaction: debits {debits}, credits {credits}")
    txn_id = session.execute(
        upsert_into(session, LedgerTransaction)
        .values(
            merchant_id=merchant_id,
            kind=kind,
            source=source,
            month=month_of(at, tz),
            rule_id=rule_id,
            basis_cents=basis_cents,
            memo=memo[:400],
            occurred_at=at,
        )
        .on_conflict_do_nothing(index_elements=["source"])
        .returning(LedgerTransaction.id)
    ).scalar_one_or_none()
    if txn_id is None:
        return None
    session.execute(
        insert(LedgerEntry),
        [
            {
                "txn_id": txn_id,
                "account": p.account,
                "merchant_id": merchant_id,
                "debit_cents": p.debit_cents,
                "credit_cents": p.credit_cents,
            }
            for p in postings
        ],
    )
    return int(txn_id)


def rule_for(session: Session, merchant: Merchant, at: datetime) -> CommissionRule | None:
    """The merchant's own rule in force at ``at``, else its category's."""
    return session.scalar(
        select(CommissionRule)
        .where(
            (CommissionRule.merchant_id == merchant.id) | (CommissionRule.category == merchant.category),
            CommissionRule.valid_from <= at,
        )
        .order_by(case((CommissionRule.merchant_id.is_(None), 1), else_=0), CommissionRule.valid_from.desc())
        .limit(1)
    )


def commission_cents(rule: CommissionRule | None, value_cents: int, coupons: int) -> int:
    if rule is None:
        return 0
    return value_cents * rule.rate_bp // 10_000 + rule.fixed_cents * coupons


def redemption_source(merchant_id: int, key: str) -> str:
    return f"redemption:{merchant_id}:{key}"


def on_coupons_redeemed(session: Session, event: CouponsRedeemed) -> None:
    """Event handler: the commission on a redemption (nothing when no rule applies or it comes to 0)."""
    merchant = session.get(Merchant, event.merchant_id)
    if merchant is None:
        return
    rule = rule_for(session, merchant, event.redeemed_at)
    amount = commission_cents(rule, event.value_cents, len(event.codes))
    if amount <= 0:
        return
    post(
        session,
        merchant.id,
        "commission",
        redemption_source(merchant.id, event.redemption_key),
        [Posting(RECEIVABLE, debit_cents=amount), Posting("commission_revenue", credit_cents=amount)],
        at=event.redeemed_at,
        tz=get_settings().timezone,
        memo=f"{len(event.codes)} coupon(s) at store {event.store_id}",
        rule_id=rule.id if rule else None,
        basis_cents=event.value_cents,
    )


def add_rule(session: Session, principal: Principal, data: schemas.CommissionRuleIn) -> CommissionRule:
    require_citywide(principal, REVENUE)
    if data.merchant_id is not None and session.get(Merchant, data.merchant_id) is None:
        raise ValidationProblem(
            _("Merchant %(id)s does not exist.", id=data.merchant_id), field="merchant_id"
        )
    rule = CommissionRule(
        merchant_id=data.merchant_id,
        category=data.category,
        rate_bp=data.rate_bp,
        fixed_cents=data.fixed_cents,
        valid_from=data.valid_from or utcnow(),
        created_by=principal.actor,
    )
    session.add(rule)
    session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="market.commission_rule.added",
        object_type="commission_rule",
        object_id=str(rule.id),
        details=data.model_dump(mode="json"),
    )
    return rule


def rules(session: Session, principal: Principal) -> list[CommissionRule]:
    require_citywide(principal, REVENUE)
    return list(
        session.scalars(select(CommissionRule).order_by(CommissionRule.valid_from.desc(), CommissionRule.id))
    )


def charge(session: Session, principal: Principal, merchant_id: int, data: schemas.ChargeIn, tz: str) -> int:
    """A featured-listing fee (the merchant owes it) or a payment received from the merchant; the txn id."""
    require_citywide(principal, REVENUE)
    if session.get(Merchant, merchant_id) is None:
        raise NotFound(_("Merchant %(id)s does not exist.", id=merchant_id))
    amount, now = data.amount_cents, utcnow()
    if data.kind == "listing_fee":
        postings = [Posting(RECEIVABLE, debit_cents=amount), Posting("listing_revenue", credit_cents=amount)]
    else:
        postings = [Posting("operator_cash", debit_cents=amount), Posting(RECEIVABLE, credit_cents=amount)]
    txn_id = post(
        session,
        merchant_id,
        data.kind,
        f"{data.kind}:{merchant_id}:{data.reference}",
        postings,
        at=now,
        tz=tz,
        memo=data.memo,
    )
    if txn_id is None:
        raise ValidationProblem(_("This reference was recorded before."), field="reference")
    audit.record(
        session,
        actor=principal.actor,
        action=f"market.ledger.{data.kind}",
        object_type="merchant",
        object_id=str(merchant_id),
        details={"amount_cents": amount, "reference": data.reference},
    )
    return txn_id


def _reader(session: Session, principal: Principal, merchant_id: int) -> Merchant:
    """The merchant's owners, or the operator's revenue staff."""
    if can_citywide(principal, REVENUE):
        merchant = session.get(Merchant, merchant_id)
        if merchant is None:
            raise NotFound(_("Merchant %(id)s does not exist.", id=merchant_id))
        return merchant
    return merchant_for(session, principal, merchant_id, MANAGE)


def _balance(session: Session, merchant_id: int, before_month: str | None = None) -> int:
    statement = (
        select(func.coalesce(func.sum(LedgerEntry.debit_cents - LedgerEntry.credit_cents), 0))
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.txn_id)
        .where(LedgerEntry.merchant_id == merchant_id, LedgerEntry.account == RECEIVABLE)
    )
    if before_month is not None:
        statement = statement.where(LedgerTransaction.month < before_month)
    return int(session.scalar(statement) or 0)


def statement(session: Session, principal: Principal, merchant_id: int, month: str) -> schemas.StatementOut:
    """What the merchant owes for one month: the opening balance, every transaction, the closing balance."""
    merchant = _reader(session, principal, merchant_id)
    rows = session.execute(
        select(LedgerTransaction, LedgerEntry.debit_cents, LedgerEntry.credit_cents)
        .join(LedgerEntry, LedgerEntry.txn_id == LedgerTransaction.id)
        .where(
            LedgerTransaction.merchant_id == merchant.id,
            LedgerTransaction.month == month,
            LedgerEntry.account == RECEIVABLE,
        )
        .order_by(LedgerTransaction.occurred_at, LedgerTransaction.id)
    ).all()
    opening = _balance(session, merchant.id, before_month=month)
    lines = [
        schemas.StatementLine(
            at=txn.occurred_at,
            kind=txn.kind,
            memo=txn.memo,
            basis_cents=txn.basis_cents,
            charged_cents=debit,
            paid_cents=credit,
        )
        for txn, debit, credit in rows
    ]
    totals = {
        kind: sum(line.charged_cents - line.paid_cents for line in lines if line.kind == kind)
        for kind in ("commission", "listing_fee", "settlement")
    }
    return schemas.StatementOut(
        merchant_id=merchant.id,
        merchant_name=merchant.name,
        month=month,
        opening_balance_cents=opening,
        commission_cents=totals["commission"],
        listing_fee_cents=totals["listing_fee"],
        paid_cents=-totals["settlement"],
        closing_balance_cents=opening + sum(totals.values()),
        lines=lines,
    )


def revenue(session: Session, principal: Principal, month: str) -> list[schemas.RevenueRow]:
    """The operator's month: per merchant, commissions, fees and payments, and what each still owes."""
    require_citywide(principal, REVENUE)
    rows = session.execute(
        select(
            LedgerEntry.merchant_id,
            LedgerTransaction.kind,
            func.sum(LedgerEntry.debit_cents - LedgerEntry.credit_cents),
        )
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.txn_id)
        .where(LedgerEntry.account == RECEIVABLE, LedgerTransaction.month == month)
        .group_by(LedgerEntry.merchant_id, LedgerTransaction.kind)
    ).all()
    by_merchant: dict[int, dict[str, int]] = {}
    for merchant_id, kind, amount in rows:
        by_merchant.setdefault(merchant_id, {})[kind] = int(amount)
    names = dict(
        session.execute(select(Merchant.id, Merchant.name).where(Merchant.id.in_(by_merchant))).all()
    )
    return [
        schemas.RevenueRow(
            merchant_id=merchant_id,
            merchant_name=names.get(merchant_id, ""),
            commission_cents=amounts.get("commission", 0),
            listing_fee_cents=amounts.get("listing_fee", 0),
            paid_cents=-amounts.get("settlement", 0),
            owed_cents=_balance(session, merchant_id),
        )
        for merchant_id, amounts in sorted(by_merchant.items())
    ]


def months_up_to(last: str, count: int) -> list[str]:
    """``count`` months ending with ``last`` (YYYY-MM), oldest first."""
    year, month = (int(part) for part in last.split("-"))
    index = year * 12 + month - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - count + 1, index + 1)]


def revenue_trend(session: Session, principal: Principal, months: list[str]) -> dict[str, dict[str, int]]:
    """Per month (of ``months``), what all merchants were charged and paid, by transaction kind."""
    require_citywide(principal, REVENUE)
    rows = session.execute(
        select(
            LedgerTransaction.month,
            LedgerTransaction.kind,
            func.sum(LedgerEntry.debit_cents - LedgerEntry.credit_cents),
        )
        .join(LedgerEntry, LedgerEntry.txn_id == LedgerTransaction.id)
        .where(LedgerEntry.account == RECEIVABLE, LedgerTransaction.month.in_(months))
        .group_by(LedgerTransaction.month, LedgerTransaction.kind)
    ).all()
    trend = {month: dict.fromkeys(LEDGER_KINDS, 0) for month in months}
    for month, kind, amount in rows:
        trend[month][kind] = abs(int(amount))
    return trend


def reconcile(session: Session) -> list[str]:
    """Every problem found (empty: the books agree): transactions that do not balance or have no entries,
    and redemptions whose commission is missing or differs from what the rules give."""
    problems = [
        f"transaction {txn_id} does not balance: debits {debits}, credits {credits}"
        for txn_id, debits, credits in session.execute(
            select(
                LedgerTransaction.id, func.sum(LedgerEntry.debit_cents), func.sum(LedgerEntry.credit_cents)
            )
            .outerjoin(LedgerEntry, LedgerEntry.txn_id == LedgerTransaction.id)
            .group_by(LedgerTransaction.id)
        )
        if debits is None or debits != credits or debits <= 0
    ]
    posted = dict(
        session.execute(
            select(LedgerTransaction.source, func.sum(LedgerEntry.debit_cents))
            .join(LedgerEntry, LedgerEntry.txn_id == LedgerTransaction.id)
            .where(LedgerTransaction.kind == "commission")
            .group_by(LedgerTransaction.source)
        ).all()
    )
    merchants = {m.id: m for m in session.scalars(select(Merchant))}
    orders = session.execute(
        select(
            Batch.merchant_id,
            Coupon.redemption_key,
            func.sum(Coupon.redeemed_value_cents),
            func.count(),
            func.min(Coupon.redeemed_at),
        )
        .join(Batch, Batch.id == Coupon.batch_id)
        .where(Coupon.status == "redeemed")
        .group_by(Batch.merchant_id, Coupon.redemption_key)
    )
    expected_sources = set()
    for merchant_id, key, value, count, at in orders:
        if key is None or at is None:  # a redeemed coupon always has both; never seen, but not trusted
            problems.append(f"a redeemed coupon of merchant {merchant_id} has no redemption key or time")
            continue
        expected = commission_cents(rule_for(session, merchants[merchant_id], at), int(value or 0), count)
        source = redemption_source(merchant_id, key)
        expected_sources.add(source)
        if int(posted.get(source, 0)) != expected:
            problems.append(f"{source}: commission {posted.get(source, 0)} where the rules give {expected}")
    problems += [
        f"{source}: a commission without a redemption" for source in posted if source not in expected_sources
    ]
    return problems


def statement_csv(found: schemas.StatementOut) -> str:
    """The statement as CSV (UTF-8 with a BOM), amounts in yuan, the balances first and last."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["merchant", found.merchant_name, "month", found.month])
    writer.writerow(["opening_balance_yuan", _yuan(found.opening_balance_cents)])
    writer.writerow(["at", "kind", "memo", "basis_yuan", "charged_yuan", "paid_yuan"])
    for line in found.lines:
        writer.writerow(
            [
                line.at.isoformat(),
                line.kind,
                line.memo,
                _yuan(line.basis_cents),
                _yuan(line.charged_cents),
                _yuan(line.paid_cents),
            ]
        )
    writer.writerow(["closing_balance_yuan", _yuan(found.closing_balance_cents)])
    return "\ufeff" + buffer.getvalue()


def _yuan(cents: int) -> str:
    return f"{cents / 100:.2f}"


KIND_LABELS = {
    "commission": _l("Commission"),
    "listing_fee": _l("Listing fee"),
    "settlement": _l("Payment received"),
}


def statement_file(
    found: schemas.StatementOut, file_format: str, settings: Settings
) -> tuple[bytes | str, str, str]:
    """The statement as a file to download: its content, media type and file name."""
    name = f"statement-{found.merchant_id}-{found.month}.{file_format}"
    if file_format == "pdf":
        return statement_pdf(found, pdf.cjk_font(settings), settings.timezone), "application/pdf", name
    return statement_csv(found), CSV, name


def statement_pdf(found: schemas.StatementOut, font: Path, tz: str) -> bytes:
    """The statement as a printable PDF (amounts in yuan, times in the platform's zone)."""
    zone = ZoneInfo(tz)
    document = pdf.Document(
        title=_("Monthly settlement statement"),
        facts=(
            (_("Merchant"), found.merchant_name),
            (_("Month"), found.month),
            (_("Opening balance"), money(found.opening_balance_cents)),
        ),
        columns=(
            pdf.Column(_("Time"), 1.4),
            pdf.Column(_("Kind"), 1.0),
            pdf.Column(_("Memo"), 2.4),
            pdf.Column(_("Basis"), 1.0, numeric=True),
            pdf.Column(_("Charged"), 1.0, numeric=True),
            pdf.Column(_("Paid"), 1.0, numeric=True),
        ),
        rows=[
            (
                line.at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                str(KIND_LABELS.get(line.kind, line.kind)),
                line.memo,
                _yuan(line.basis_cents),
                _yuan(line.charged_cents),
                _yuan(line.paid_cents),
            )
            for line in found.lines
        ],
        totals=(
            (_("Commissions"), money(found.commission_cents)),
            (_("Listing fees"), money(found.listing_fee_cents)),
            (_("Payments received"), money(found.paid_cents)),
            (_("Closing balance (owed)"), money(found.closing_balance_cents)),
        ),
        footer=_(
            "Generated %(at)s. Amounts in yuan.", at=utcnow().astimezone(zone).strftime("%Y-%m-%d %H:%M")
        ),
    )
    return pdf.render(document, font)
