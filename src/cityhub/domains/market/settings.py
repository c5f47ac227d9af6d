"""Settings of the market domain (``CITYHUB_MARKET__*``): the walking-distance radius, coupon codes and the
limits that keep coupon hunters from emptying a batch."""

from __future__ import annotations

from pydantic import Field

from cityhub.kernel.settings import DomainSettings, domain_config


class MarketSettings(DomainSettings):
    model_config = domain_config("market")

    nearby_radius_km: float = Field(
        3.0, gt=0, le=20, description="Radius of the 'nearby' search when the caller gives none (km)."
    )
    max_radius_km: float = Field(
        20.0, gt=0, le=50, description="The largest radius a nearby search accepts (km)."
    )
    claim_rate: str = Field(
        "30/minute",
        description="Most coupon claims one person may make (limits syntax, e.g. 30/minute); 429 beyond.",
    )
    device_claim_rate: str = Field(
        "60/minute",
        description="Most coupon claims from one device (X-Device-Id header, else the address) per window.",
    )
    coupon_expiry_batch: int = Field(
        5000, ge=100, le=100_000, description="Coupons the expiry job marks expired per pass."
    )
    suspicious_device_people: int = Field(
        3,
        ge=2,
        le=100,
        description="A device that claimed for this many people or more is reported as suspicious.",
    )
    suspicious_claims_factor: int = Field(
        5,
        ge=2,
        le=100,
        description="A person claiming this many times the median claimer (and at least 10) is reported.",
    )
