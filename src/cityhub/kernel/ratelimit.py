"""Rate limits on logins and public endpoints (the ``limits`` library: memory or Redis storage)."""

from __future__ import annotations

import time
from functools import cache

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from cityhub.kernel.errors import TooManyRequests
from cityhub.kernel.i18n import gettext as _


@cache
def _limiter(storage_uri: str) -> MovingWindowRateLimiter:
    return MovingWindowRateLimiter(storage_from_string(storage_uri))


def enforce(storage_uri: str, rate: str, *identifiers: str) -> None:
    """Count one hit against ``rate`` (e.g. "10/minute") for the identifiers; raise 429 past the limit."""
    limiter = _limiter(storage_uri)
    item = parse(rate)
    if limiter.hit(item, *identifiers):
        return
    reset_at, _remaining = limiter.get_window_stats(item, *identifiers)
    retry_after = max(1, int(reset_at - time.time()))
    raise TooManyRequests(
        _("Too many requests; try again in %(seconds)s seconds.", seconds=retry_after),
        headers={"Retry-After": str(retry_after)},
        retry_after=retry_after,
    )


def reset(storage_uri: str) -> None:
    """Clear all counters (tests)."""
    _limiter(storage_uri).storage.reset()
