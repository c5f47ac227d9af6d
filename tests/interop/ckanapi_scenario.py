"""Reads a running cityhub's open data with the CKAN client ckanapi, as any CKAN site's (run with the interop
virtualenv's Python, not pytest).

Reads CITYHUB_URL; prints one JSON object of what the client saw, which tests/interop/test_ckanapi.py checks.
ckanapi POSTs JSON to {address}/api/action/<name> and turns the error envelope into its exceptions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import ckanapi


def refusal(call: Callable[[], object]) -> dict[str, object]:
    """The ckanapi exception a call raises, and what it carries."""
    try:
        call()
    except ckanapi.NotFound as exc:
        return {"raised": "NotFound", "message": exc.args[0]}
    except ckanapi.ValidationError as exc:
        return {"raised": "ValidationError", "fields": sorted(exc.error_dict)}
    except ckanapi.NotAuthorized as exc:
        return {"raised": "NotAuthorized", "type": exc.args[0]["__type"]}
    return {"raised": None}


def seen(address: str) -> dict[str, object]:
    site = ckanapi.RemoteCKAN(address, user_agent="cityhub-interop/1.0")
    search = site.call_action(
        "package_search", {"q": "人口", "rows": 1, "sort": "name asc", "facet.field": ["organization"]}
    )
    package = site.action.package_show(id="stats-population")
    rows = site.action.datastore_search(
        resource_id=package["resources"][0]["id"],
        filters={"district": ["滨江区", "上城区"]},
        sort="population desc",
        limit=1,
    )
    keyed = ckanapi.RemoteCKAN(address, apikey="any-key", user_agent="cityhub-interop/1.0")
    return {
        "packages": site.action.package_list(),
        "search_count": search["count"],
        "search_names": [found["name"] for found in search["results"]],
        "organization_facet": {
            item["name"]: item["count"] for item in search["search_facets"]["organization"]["items"]
        },
        "package": {
            "title": package["title"],
            "organization": package["organization"]["name"],
            "tags": [tag["name"] for tag in package["tags"]],
            "download": package["resources"][0]["url"],
        },
        "organizations": site.action.organization_list(),
        "rows": {"total": rows["total"], "records": rows["records"]},
        "with_a_key": keyed.action.package_list(),
        "closed": refusal(lambda: site.action.package_show(id="stats-income")),
        "bad_sort": refusal(
            lambda: site.action.datastore_search(resource_id="stats-population.csv", sort="colour asc")
        ),
        "write": refusal(lambda: keyed.action.package_create(name="mine", title="not here")),
    }


if __name__ == "__main__":
    print(json.dumps(seen(os.environ["CITYHUB_URL"]), ensure_ascii=False))
