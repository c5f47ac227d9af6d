"""The NGSI-LD context hub domain: under construction, not yet installed (see ADR 0002)."""
