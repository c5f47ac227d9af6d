"""Events the exchange publishes (in the change's transaction, through the kernel outbox)."""

from __future__ import annotations

from cityhub.kernel import events


class ResourceCorrected(events.Event):
    """A resource's owner accepted a correction: a new version replaced the one objected to. Consumers'
    systems reload the rows named (or the whole version)."""

    event_type = "exchange.resource_corrected"

    resource: str  # the code
    objection_id: int
    version: int  # the corrected version's number
    rows: list[int]
