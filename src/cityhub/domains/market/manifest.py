"""The 3-km community life circle: merchants and their stores near residents, coupons (WeChat 卡券 kinds)
claimed by residents and redeemed at the counter."""

from __future__ import annotations

from datetime import timedelta

from cityhub.domains.market.settings import MarketSettings
from cityhub.kernel.domain import Domain, PeriodicJob, Permission, Tile
from cityhub.kernel.i18n import lazy_gettext as _l

MANIFEST = Domain(
    name="market",
    title=_l("Community market"),
    depends_on=("identity",),
    api="cityhub.domains.market.api:router",
    pages="cityhub.domains.market.views:router",
    cli=("cityhub.domains.market.cli:market_app",),
    models="cityhub.domains.market.models",
    demo_seeder="cityhub.domains.market.demo:seed",
    settings=MarketSettings,
    permissions=(
        Permission(
            "market.merchants.review",
            _l("Review merchant applications: approve, reject, suspend (over the whole city)"),
            ("operator",),
        ),
        Permission(
            "market.merchant.manage",
            _l("Run one's merchant: stores, coupon batches, staff and till keys"),
            ("merchant_owner",),
        ),
        Permission(
            "market.revenue.manage",
            _l("Set commission rules, charge listing fees, record merchants' payments, see the revenue"),
            ("operator",),
        ),
        Permission(
            "market.coupons.redeem",
            _l("Look up and redeem one's merchant's coupons at the counter"),
            ("merchant_owner", "merchant_clerk"),
        ),
    ),
    event_handlers={"market.coupons_redeemed": ("cityhub.domains.market.jobs:post_commission",)},
    job_handlers={
        "market.deals.payment": "cityhub.domains.market.jobs:settle_deal_payment",
        "market.deals.refund": "cityhub.domains.market.jobs:settle_deal_refund",
    },
    periodic_jobs=(
        PeriodicJob(
            "market.reports.rollup", timedelta(hours=1), "cityhub.domains.market.jobs:roll_up_reports"
        ),
        PeriodicJob(
            "market.coupons.expire", timedelta(minutes=15), "cityhub.domains.market.jobs:expire_coupons"
        ),
        PeriodicJob("market.deals.close", timedelta(minutes=1), "cityhub.domains.market.jobs:close_deals"),
    ),
    tiles=(
        Tile("market", _l("Nearby shops"), "/market", "store", order=5),
        Tile("market-deals", _l("Group deals"), "/market/deals", "users", order=5),
        Tile(
            "market-merchant",
            _l("My shop"),
            "/market/merchant",
            "store",
            permission="market.coupons.redeem",
            console=True,
            order=40,
        ),
        Tile(
            "market-review",
            _l("Merchant review"),
            "/console/market/merchants",
            "store",
            permission="market.merchants.review",
            console=True,
            order=41,
        ),
        Tile(
            "market-revenue",
            _l("Market revenue"),
            "/console/market/revenue",
            "chart",
            permission="market.revenue.manage",
            console=True,
            order=42,
        ),
    ),
)
