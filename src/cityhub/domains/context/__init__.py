"""Context hub — the public face other domains may import.

Other domains read and write NGSI-LD entities through these service calls (never the tables), and learn of
changes by registering a change listener; ``entity_rows`` reads the entities of one type as table rows.
"""

from cityhub.domains.context.service.changes import EntityChange, EntitySnapshot, listen
from cityhub.domains.context.service.tables import check_entity_reading, entity_rows
from cityhub.domains.context.service.tenants import TenantRef, find_tenant

__all__ = [
    "EntityChange",
    "EntitySnapshot",
    "TenantRef",
    "check_entity_reading",
    "entity_rows",
    "find_tenant",
    "listen",
]
