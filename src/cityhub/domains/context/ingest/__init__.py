"""Telemetry ingest: the bulk write path shared by the HTTP telemetry endpoint and the MQTT bridge."""
