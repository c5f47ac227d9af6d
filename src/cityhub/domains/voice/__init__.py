"""Citizen voice — the public face other domains may import.

The ticket types and the wire shape of a ticket: what the evaluation domain's indicators and other domains'
links to a case (a care alarm that became a ticket, say) are built on. Assessment figures join them later.
"""

from cityhub.domains.voice.models import TICKET_TYPES
from cityhub.domains.voice.schemas import TicketOut

__all__ = ["TICKET_TYPES", "TicketOut"]
