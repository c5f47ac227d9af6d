"""The NGSI-LD API at ``/ngsi-ld/v1`` (ETSI GS CIM 009): one router assembled from the clause modules."""

from fastapi import APIRouter

from cityhub.domains.context.ngsi import entities

PREFIX = "/ngsi-ld/v1"

router = APIRouter(prefix=PREFIX, tags=["NGSI-LD"])
router.include_router(entities.router)

__all__ = ["PREFIX", "router"]
