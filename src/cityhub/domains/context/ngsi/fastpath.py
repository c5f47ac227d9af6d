"""A raw ASGI fast path for the broker's busiest request, ``PATCH /ngsi-ld/v1/entities/{id}/attrs/{attr}``.

FastAPI's routing and dependency injection cost more CPU than the update itself. When everything the request
needs is already known to this process — the caller (principal cache), the tenant and the @context mapper —
this middleware answers it directly through the same ``common.patch_attribute`` the route uses, so
validation, authorisation, group commit, history, subscriptions and error shapes are identical. Anything
else (first request of a caller or tenant, another context, another content type) goes down the normal
route, which fills those caches.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cityhub.domains.context.errors import render_ngsi_error
from cityhub.domains.context.ngsi.common import (
    MAX_BODY_BYTES,
    WRITE,
    cached_call,
    ngsi_errors,
    parse_body,
    patch_attribute,
    resolver_for,
)
from cityhub.domains.identity import cached_principal
from cityhub.kernel.errors import Problem

_ATTRIBUTE_PATCH = re.compile(r"^/ngsi-ld/v1/entities/([^/]+)/attrs/([^/]+)$")


class AttributePatchFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "PATCH":
            await self.app(scope, receive, send)
            return
        match = _ATTRIBUTE_PATCH.match(scope["path"])
        request = Request(scope)
        declared = request.headers.get("content-length", "")
        if match is None or not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
            await self.app(scope, receive, send)  # the route refuses a body too large before reading it
            return
        raw = await _read_all(receive)
        principal = cached_principal(request)
        if principal is None:
            await self.app(scope, _replay(raw, receive), send)
            return
        try:
            with ngsi_errors():
                body = parse_body(raw)
                settings = scope["app"].state.settings
                call = cached_call(request, principal, resolver_for(settings), WRITE, body)
                if call is None:
                    await self.app(scope, _replay(raw, receive), send)
                    return
                request.state.body = body
                response = await patch_attribute(call, match.group(1), match.group(2))
        except Problem as problem:
            response = render_ngsi_error(request, problem)
        await response(scope, receive, send)


async def _read_all(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(raw: bytes, receive: Receive) -> Receive:
    """A receive channel that hands the already-read body to the normal route, then the real channel."""
    sent = False

    async def replaying() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    return replaying
