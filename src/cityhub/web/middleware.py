"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs throughput): request id and locale."""

from __future__ import annotations

import itertools
import os
import secrets
from http.cookies import SimpleCookie

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cityhub.kernel.i18n import SUPPORTED_LOCALES, negotiate, set_locale

LOCALE_COOKIE = "cityhub_locale"
REQUEST_ID_HEADER = "x-request-id"

# Request ids need to be unique, not unguessable: a random prefix per process and a counter. (A fresh
# secrets.token_hex per request was 14% of the CPU of the busiest request: getrandom is slow in a VM.)
_process_prefix = secrets.token_hex(5)
_request_numbers = itertools.count(1)


def _new_process_prefix() -> None:  # a forked worker must not repeat its parent's ids
    global _process_prefix
    _process_prefix = secrets.token_hex(5)


os.register_at_fork(after_in_child=_new_process_prefix)


def new_request_id() -> str:
    return f"{_process_prefix}-{next(_request_numbers):x}"


class RequestContextMiddleware:
    """Gives every request an id (echoed in ``X-Request-ID``) and a locale.

    The locale comes from the ``cityhub_locale`` cookie, else Accept-Language, else the default.
    """

    def __init__(self, app: ASGIApp, default_locale: str) -> None:
        self.app = app
        self.default_locale = default_locale

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        request_id = headers.get(REQUEST_ID_HEADER, "")[:64] or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        locale = self._locale(headers)
        scope["state"]["locale"] = locale
        set_locale(locale)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)

    def _locale(self, headers: dict[str, str]) -> str:
        cookie_header = headers.get("cookie")
        if cookie_header:
            cookies = SimpleCookie()
            try:
                cookies.load(cookie_header)
            except Exception:
                cookies = SimpleCookie()
            chosen = cookies.get(LOCALE_COOKIE)
            if chosen and chosen.value in SUPPORTED_LOCALES:
                return chosen.value
        return negotiate(headers.get("accept-language")) or self.default_locale
