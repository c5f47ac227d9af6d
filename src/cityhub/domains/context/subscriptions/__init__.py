"""NGSI-LD subscriptions and notifications (GS CIM 009 clauses 5.8 and 5.11).

- ``document``: the Subscription resource: validation, PATCH merge, compaction for GET;
- ``store``: the operations on the ``context_subscription`` table;
- ``matching``: the change listener that queues notifications in the change's transaction;
- ``queue``: the kernel jobs that wake delivery;
- ``delivery`` and ``transport``: claiming, rendering and sending (HTTP, MQTT), retries and status.

Importing this package registers the listener; ``cityhub.domains.context.service`` does so, so every write
path of the store queues notifications.
"""

from cityhub.domains.context.subscriptions import matching

__all__ = ["matching"]
