"""Drives a running cityhub with ngsildclient (run with the interop virtualenv's Python, not pytest).

Reads CITYHUB_URL (http://host:port) and CITYHUB_API_KEY; prints one JSON object of observations that
tests/interop/test_ngsildclient.py checks. ngsildclient pins an old httpx, hence its own virtualenv.
"""

from __future__ import annotations

import json
import os
from urllib.parse import urlsplit

from ngsildclient import Client, Entity
from requests.auth import AuthBase


class ApiKeyAuth(AuthBase):
    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self, request):  # type: ignore[no-untyped-def]
        request.headers["X-API-Key"] = self.key
        return request


def station(number: int, pm25: float) -> Entity:
    entity = Entity("AirQualityObserved", f"Station:{number}")
    entity.prop("pm25", pm25, unitcode="GQ")
    entity.prop("name", f"station {number}")
    entity.loc(30.25 + number / 1000, 120.2)  # ngsildclient takes (lat, lon)
    entity.rel("refDevice", f"urn:ngsi-ld:Device:{number}")
    return entity


def main() -> None:
    url = urlsplit(os.environ["CITYHUB_URL"])
    client = Client(
        hostname=url.hostname or "127.0.0.1",
        port=url.port or 80,
        custom_auth=ApiKeyAuth(os.environ["CITYHUB_API_KEY"]),
        verbose=False,
    )
    seen: dict[str, object] = {"connected": client.is_connected()}
    client.entities.create(station(1, 12.0))
    fetched = client.entities.get("urn:ngsi-ld:AirQualityObserved:Station:1")
    seen["fetched_pm25"] = fetched["pm25"]["value"]
    seen["fetched_relationship"] = fetched["refDevice"]["object"]
    fetched["pm25"].value = 48.0
    client.entities.update(fetched)
    seen["updated_pm25"] = client.entities.get(fetched.id)["pm25"]["value"]
    batch = client.batch.upsert([station(number, float(number * 10)) for number in range(2, 8)])
    seen["batch_ok"] = batch.n_ok
    seen["batch_errors"] = batch.n_err
    seen["count_all"] = client.entities.count(type="AirQualityObserved")
    polluted = client.query(type="AirQualityObserved", q="pm25>35")
    seen["polluted"] = sorted(entity.id for entity in polluted)
    seen["exists_before_delete"] = client.entities.exists("urn:ngsi-ld:AirQualityObserved:Station:7")
    client.entities.delete("urn:ngsi-ld:AirQualityObserved:Station:7")
    seen["exists_after_delete"] = client.entities.exists("urn:ngsi-ld:AirQualityObserved:Station:7")
    seen["count_after_delete"] = client.entities.count(type="AirQualityObserved")
    client.close()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
