"""The context hub's operations; routes, the MQTT bridge and other domains call these, never the tables."""
