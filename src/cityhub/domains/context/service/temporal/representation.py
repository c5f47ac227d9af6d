"""Temporal representations of an entity (clause 4.5.7 and following), in expanded names.

- normalized: each attribute is the list of its instances, each with ``instanceId`` and its ``observedAt``
  (the change time when the instance had none); a deletion appears as an instance whose value is
  ``urn:ngsi-ld:null`` with ``deletedAt``;
- simplified (``temporalValues``): ``{"type", "values": [[value, time], ...]}`` per datasetId (``objects``
  for Relationships, ``languageMaps``, ``vocabs``, ``jsons``, ``valueLists``, ``objectLists``); deletions
  are left out;
- aggregated (``aggrMethods``): ``{"type", "<method>": [[value, start, end], ...]}`` per datasetId.

An attribute with several datasetIds shows a list of such objects, each with its ``datasetId``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Row

from cityhub.domains.context.service.temporal.aggregation import AggregatedSeries
from cityhub.domains.context.service.temporal.history import INSTANCE_ID_PREFIX
from cityhub.domains.context.store.document import NULL, PROPERTY, VALUE_MEMBER, timestamp
from cityhub.kernel import jsontext

TEMPORAL_MEMBER = {
    "value": "values",
    "object": "objects",
    "languageMap": "languageMaps",
    "vocab": "vocabs",
    "json": "jsons",
    "valueList": "valueLists",
    "objectList": "objectLists",
}


def value_member(attr_type: str) -> str:
    return VALUE_MEMBER.get(attr_type, "value")


def normalized_attribute(rows: Sequence[Row[Any]], *, sys_attrs: bool) -> list[dict[str, Any]]:
    """The instances of one attribute (``history.read_attribute``'s whole instances)."""
    stored = _decoded(row.instance for row in rows)
    return [_normalized(row, instance, sys_attrs) for row, instance in zip(rows, stored, strict=True)]


def _normalized(row: Row[Any], stored: dict[str, Any] | None, sys_attrs: bool) -> dict[str, Any]:
    modified = None
    if row.deleted:
        shown: dict[str, Any] = {"type": row.attr_type, value_member(row.attr_type): NULL}
        if row.dataset_id is not None:
            shown["datasetId"] = row.dataset_id
        shown["deletedAt"] = row.created
    else:
        shown = stored if stored is not None else {"type": row.attr_type}
        modified = shown.pop("modifiedAt", None)
        if "observedAt" not in shown:
            shown["observedAt"] = row.observed
    shown["instanceId"] = INSTANCE_ID_PREFIX + str(row.id)
    if sys_attrs:
        shown["createdAt"] = row.created
        shown["modifiedAt"] = modified or row.created
    return shown


def simplified_attribute(rows: Sequence[Row[Any]]) -> Any:
    """``temporalValues`` of one attribute (``history.read_attribute``'s value rows): one object per
    datasetId with [value, time] pairs."""
    groups: dict[str | None, dict[str, Any]] = {}
    pairs_of: dict[str | None, list[list[Any]]] = {}
    for row, value in zip(rows, _decoded(row.value for row in rows), strict=True):
        pairs = pairs_of.get(row.dataset_id)
        if pairs is None:
            group = groups[row.dataset_id] = _group_head(row.attr_type, row.dataset_id)
            pairs = pairs_of[row.dataset_id] = group[TEMPORAL_MEMBER[value_member(row.attr_type)]] = []
        pairs.append([value, row.instant])
    return _one_or_list(list(groups.values()))


def _decoded(texts: Iterable[str | None]) -> list[Any]:
    """JSON texts (None: null) parsed in one call: a thousand small ``json.loads`` cost three times more."""
    return list(jsontext.loads("[" + ",".join(text or "null" for text in texts) + "]"))


def aggregated_attribute(
    series_by_dataset: Mapping[str | None, AggregatedSeries], methods: Iterable[str]
) -> Any:
    groups = []
    for dataset_id, series in series_by_dataset.items():
        group = _group_head(series.attr_type, dataset_id)
        for method in methods:
            group[method] = [
                [period.values[method], timestamp(period.start), timestamp(period.end)]
                for period in series.periods
                if method in period.values
            ]
        groups.append(group)
    return _one_or_list(groups)


def _group_head(attr_type: str | None, dataset_id: str | None) -> dict[str, Any]:
    head: dict[str, Any] = {"type": attr_type or PROPERTY}
    if dataset_id is not None:
        head["datasetId"] = dataset_id
    return head


def _one_or_list(groups: list[dict[str, Any]]) -> Any:
    return groups[0] if len(groups) == 1 else groups
