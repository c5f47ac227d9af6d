"""Citizen voice — the public face other domains may import.

The ticket types and the wire shape of a ticket: what the evaluation domain's indicators and other domains'
links to a case (a care alarm that became a ticket, say) are built on, and the public ratings of city
projects that the evaluation domain reads. Assessment figures join them later.
"""

from cityhub.domains.voice.models import TICKET_TYPES
from cityhub.domains.voice.schemas import TicketOut
from cityhub.domains.voice.service.projects import ProjectRatingSummary, project_rating_summaries

__all__ = ["TICKET_TYPES", "ProjectRatingSummary", "TicketOut", "project_rating_summaries"]
