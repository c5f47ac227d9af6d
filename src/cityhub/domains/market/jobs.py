"""Periodic market jobs."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from cityhub.domains.market.events import CouponsRedeemed
from cityhub.domains.market.service import ledger, reports
from cityhub.domains.market.service.coupons import expire_due
from cityhub.domains.market.settings import MarketSettings
from cityhub.kernel.db import utcnow
from cityhub.kernel.jobs import JobContext
from cityhub.kernel.settings import domain_settings


def expire_coupons(ctx: JobContext) -> None:
    """Periodic: coupons past their validity become expired, up to ``coupon_expiry_batch`` a pass."""
    expire_due(ctx.session, ctx.settings.timezone, domain_settings(MarketSettings).coupon_expiry_batch)


def post_commission(session: Session, event: CouponsRedeemed) -> None:
    """Event handler: the operator's commission on a redemption (posted once however often it runs)."""
    ledger.on_coupons_redeemed(session, event)


def roll_up_reports(ctx: JobContext) -> None:
    """Periodic: count the days that are over into the daily report rollup. A day counts as over an hour
    after its midnight, so a transaction that began just before midnight has committed."""
    settled = (utcnow() - timedelta(hours=1)).astimezone(ZoneInfo(ctx.settings.timezone)).date()
    reports.roll_up(ctx.session, settled - timedelta(days=1))
