"""Clause 5.13: /jsonldContexts add, list, serve, delete, and hosted contexts used by later requests."""

from __future__ import annotations

from fastapi.testclient import TestClient

from cityhub.domains.context.ngsi.common import resolver_for
from tests.domains.context.conftest import NgsiClient

LD = {"Content-Type": "application/ld+json"}
CONTEXT = {"@context": {"Lamp": "https://example.org/Lamp", "brightness": "https://example.org/brightness"}}


def link(url: str) -> dict[str, str]:
    return {"Link": f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'}


def host(ngsi: NgsiClient) -> str:
    response = ngsi.post("/jsonldContexts", json=CONTEXT, headers=LD)
    assert response.status_code == 201, response.text
    assert response.headers["Location"].startswith("/ngsi-ld/v1/jsonldContexts/")
    return "http://testserver" + response.headers["Location"]


def test_add_serve_list_delete(ngsi: NgsiClient, client: TestClient) -> None:
    url = host(ngsi)
    local_id = url.rsplit("/", 1)[1]
    served = client.get(url)  # public: JSON-LD processors fetch it without credentials
    assert served.status_code == 200 and served.headers["content-type"].startswith("application/ld+json")
    assert served.json() == CONTEXT
    assert ngsi.get("/jsonldContexts").json() == [url]
    details = ngsi.get("/jsonldContexts", params={"details": "true", "kind": "Hosted"}).json()
    assert details[0]["URL"] == url and details[0]["localId"] == local_id and details[0]["kind"] == "Hosted"
    assert ngsi.get("/jsonldContexts", params={"kind": "Cached"}).json() == []
    one = ngsi.get(f"/jsonldContexts/{local_id}", params={"details": "true"}).json()
    assert one["kind"] == "Hosted" and "timestamp" in one
    assert client.get(url, params={"details": "true"}).status_code == 401
    assert ngsi.delete(f"/jsonldContexts/{local_id}", params={"reload": "true"}).status_code == 400
    assert ngsi.delete(f"/jsonldContexts/{local_id}").status_code == 204
    assert client.get(url).status_code == 404
    assert ngsi.delete(f"/jsonldContexts/{local_id}").status_code == 404


def test_hosted_context_url_in_a_link_header(ngsi: NgsiClient) -> None:
    url = host(ngsi)
    lamp = {"id": "urn:ngsi-ld:Lamp:1", "type": "Lamp", "brightness": {"type": "Property", "value": 70}}
    assert ngsi.post("/entities", json=lamp, headers=link(url)).status_code == 201
    expanded = ngsi.get("/entities/urn:ngsi-ld:Lamp:1").json()
    assert expanded["type"] == "https://example.org/Lamp" and "https://example.org/brightness" in expanded
    compact = ngsi.get("/entities", params={"type": "Lamp", "q": "brightness>50"}, headers=link(url))
    assert compact.status_code == 200, compact.text
    assert compact.json()[0]["brightness"]["value"] == 70
    assert url in compact.headers["Link"]


def test_another_process_finds_a_hosted_context_in_the_database(ngsi: NgsiClient, client: TestClient) -> None:
    url = host(ngsi)
    resolver = resolver_for(client.app.state.settings)  # type: ignore[attr-defined]
    assert resolver.unregister(url)  # what a process that did not host it knows: nothing in memory
    lamp = {"id": "urn:ngsi-ld:Lamp:2", "type": "Lamp", "brightness": {"type": "Property", "value": 1}}
    assert ngsi.post("/entities", json=lamp, headers=link(url)).status_code == 201
    assert ngsi.get("/entities/urn:ngsi-ld:Lamp:2").json()["type"] == "https://example.org/Lamp"


def test_invalid_contexts_and_unknown_ids(ngsi: NgsiClient) -> None:
    not_a_context = ngsi.post(
        "/jsonldContexts", json={"terms": {}}, headers={"Content-Type": "application/json"}
    )
    assert not_a_context.status_code == 400
    assert not_a_context.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    bad_term = ngsi.post(
        "/jsonldContexts", json={"@context": {"x": 5}}, headers={"Content-Type": "application/json"}
    )
    assert bad_term.status_code == 400, bad_term.text
    assert ngsi.get("/jsonldContexts/0123456789abcdef0123456789abcdef").status_code == 404
    assert ngsi.get("/jsonldContexts", params={"kind": "Weird"}).status_code == 400


def test_managing_contexts_needs_the_permission(client: TestClient) -> None:
    response = client.post("/ngsi-ld/v1/jsonldContexts", json=CONTEXT)
    assert response.status_code == 401


def test_a_context_document_may_be_sent_as_plain_json(ngsi: NgsiClient) -> None:
    response = ngsi.post("/jsonldContexts", json=CONTEXT, headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text
