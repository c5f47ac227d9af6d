"""The 3-km community life circle — the public face other domains may import.

Other domains (evaluation, the operator's revenue) react to ``CouponsRedeemed``; they reference merchants
and stores by id.
"""

from cityhub.domains.market.events import CouponsRedeemed

__all__ = ["CouponsRedeemed"]
