"""Periodic and queued market jobs."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from cityhub.domains.market.events import CouponsRedeemed
from cityhub.domains.market.service import deals, ledger, reports
from cityhub.domains.market.service.coupons import Clock, expire_due
from cityhub.domains.market.settings import MarketSettings
from cityhub.kernel.db import utcnow
from cityhub.kernel.jobs import JobContext
from cityhub.kernel.payments import payment_provider
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


def close_deals(ctx: JobContext) -> None:
    """Periodic: close the group deals past their deadline (vouchers or refunds). The provider is asked for
    only when a deal is due, so a platform without online payment and without deals runs this quietly."""
    now = utcnow()
    if deals.any_due(ctx.session, now):
        deals.close_due(ctx.session, payment_provider(ctx.settings), Clock(now, ctx.settings.timezone))


def settle_deal_payment(ctx: JobContext) -> None:
    """A signed payment callback of the sandbox provider for a deal's join (deals.PAYMENT_JOB)."""
    provider = payment_provider(ctx.settings)
    settlement = provider.verify(ctx.payload["body"].encode(), ctx.payload["signature"])
    deals.settle_payment(ctx.session, provider, settlement, utcnow())


def settle_deal_refund(ctx: JobContext) -> None:
    """A signed refund callback of the sandbox provider for a deal's join (deals.REFUND_JOB)."""
    provider = payment_provider(ctx.settings)
    settlement = provider.verify_refund(ctx.payload["body"].encode(), ctx.payload["signature"])
    deals.settle_refund(ctx.session, provider.name, settlement, utcnow())
