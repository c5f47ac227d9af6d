"""Reads a running cityhub's Open311 server with the PyPI client georeport, in JSON and in XML (run with the
interop virtualenv's Python, not pytest).

Reads CITYHUB_URL and CITYHUB_REQUEST_ID; prints one JSON object of what the client saw, which
tests/interop/test_georeport.py checks.
"""

from __future__ import annotations

import json
import os

from georeport import GeoReport


def as_list(parsed: object) -> list:  # type: ignore[type-arg]
    """xmltodict gives a repeated element as a list but a single one as a dict."""
    return parsed if isinstance(parsed, list) else [parsed]


def seen(output_format: str) -> dict[str, object]:
    client = GeoReport(os.environ["CITYHUB_URL"] + "/open311/v2", output_format=output_format)
    services = as_list(client.get_service_list())
    definition = client.get_service_definition("01.02")
    attributes = definition["attributes"]
    if output_format == "xml":  # xmltodict keeps the list's wrapper element
        attributes = as_list(attributes["attribute"])
    requests = as_list(client.get_service_requests(service_code="01.02", status="open"))
    one = client.get_service_request(os.environ["CITYHUB_REQUEST_ID"])
    return {
        "service_codes": sorted(str(service["service_code"]) for service in services),
        "attribute_codes": [str(attribute["code"]) for attribute in attributes],
        "open_requests": sorted(str(request["service_request_id"]) for request in requests),
        "one_status": one["status"],
        "one_service": one["service_code"],
    }


if __name__ == "__main__":
    print(json.dumps({"json": seen("json"), "xml": seen("xml")}, ensure_ascii=False))
