"""City services — the public face other domains may import.

Other domains (voice, health, energy...) reference service items by code; they can look one up here.
"""

from cityhub.domains.services.schemas import ItemOut
from cityhub.domains.services.service.catalogue import get_item

__all__ = ["ItemOut", "get_item"]
