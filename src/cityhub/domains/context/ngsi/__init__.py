"""The NGSI-LD API at ``/ngsi-ld/v1`` (ETSI GS CIM 009): one router assembled from the clause modules."""

from fastapi import APIRouter

from cityhub.domains.context.ngsi import batch, contexts, discovery, entities, query, subscriptions, temporal

PREFIX = "/ngsi-ld/v1"

router = APIRouter(prefix=PREFIX, tags=["NGSI-LD"])
router.include_router(entities.router)
router.include_router(query.router)
router.include_router(discovery.router)
router.include_router(contexts.router)
router.include_router(batch.router)
router.include_router(temporal.router)
router.include_router(subscriptions.router)

__all__ = ["PREFIX", "router"]
