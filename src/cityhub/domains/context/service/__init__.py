"""The context hub's operations; routes, the MQTT bridge and other domains call these, never the tables."""

# Registers the subscriptions' change listener wherever the store can be written (app, worker, CLI).
from cityhub.domains.context import subscriptions as _subscriptions  # noqa: F401
