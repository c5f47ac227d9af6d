"""JSON text for hot paths: orjson, with the standard library as the fallback for what orjson refuses.

Decoding and encoding JSON was the largest single cost of bulk ingest, of loading entity documents and of
long temporal answers (measured: ``json`` 3-6 times slower than orjson on those documents). The semantics
differ from ``json`` only where ``json`` itself is lax: orjson refuses ``NaN``/``Infinity`` and lone
surrogates in input (not JSON), and reads integers beyond 64 bits as floats.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.responses import JSONResponse

DecodeError = orjson.JSONDecodeError  # a ValueError, like json.JSONDecodeError


def loads(text: str | bytes | bytearray | memoryview) -> Any:
    return orjson.loads(text)


def dumps(value: Any) -> str:
    """Compact JSON text, non-ASCII kept. Values orjson cannot encode (integers beyond 64 bits, keys that
    are not strings) go through ``json``, which writes them as JSON does."""
    return dumps_bytes(value).decode()


def dumps_bytes(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class FastJSONResponse(JSONResponse):
    """A JSONResponse encoded by orjson (same compact, non-ASCII output as Starlette's)."""

    def render(self, content: Any) -> bytes:
        return dumps_bytes(content)
