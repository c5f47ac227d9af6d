"""Events the market publishes (in the change's transaction, through the kernel outbox)."""

from __future__ import annotations

from datetime import datetime

from cityhub.kernel import events


class CouponsRedeemed(events.Event):
    """Coupons were redeemed at a counter: irreversible; names the store and the staff or till that did it."""

    event_type = "market.coupons_redeemed"

    merchant_id: int
    store_id: int
    staff: str
    codes: list[str]
    value_cents: int
    redemption_key: str  # the till's client key: with the merchant, names the redemption once
    redeemed_at: datetime
