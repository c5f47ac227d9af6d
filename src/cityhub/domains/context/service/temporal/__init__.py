"""The NGSI-LD temporal API over the attribute history: reading (``reads``), aggregating (``aggregation``),
writing (``writes``); ``window`` parses the temporal query, ``representation`` shapes the answers."""

from cityhub.domains.context.service.temporal.reads import (
    TemporalResult,
    TemporalSelection,
    TemporalView,
    View,
    query_temporal,
    retrieve_temporal,
)
from cityhub.domains.context.service.temporal.window import (
    parse_aggregation,
    parse_temporal_query,
)
from cityhub.domains.context.service.temporal.writes import (
    append_temporal_attributes,
    delete_instance,
    delete_temporal_attribute,
    delete_temporal_entity,
    modify_instance,
    upsert_temporal_entity,
)

__all__ = [
    "TemporalResult",
    "TemporalSelection",
    "TemporalView",
    "View",
    "append_temporal_attributes",
    "delete_instance",
    "delete_temporal_attribute",
    "delete_temporal_entity",
    "modify_instance",
    "parse_aggregation",
    "parse_temporal_query",
    "query_temporal",
    "retrieve_temporal",
    "upsert_temporal_entity",
]
