"""Government data sharing and open data — the public face other domains may import.

Other domains refer to resources by code and read shared data as consumers, through grants, like any
department system; the sharing and open classes are the vocabulary they may show.
"""

from cityhub.domains.exchange.models import OPEN_CLASSES, SHARING_CLASSES

__all__ = ["OPEN_CLASSES", "SHARING_CLASSES"]
