"""The @context files shipped with cityhub and the NGSI-LD core context URLs.

``contexts/urlmap.json`` (next to this package) maps each canonical URL to its file, so adding a shipped
context is a data change. Core context URLs are recognised by pattern: a ``Link`` to any core version (or
to the unversioned URL) never reaches the network.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from cityhub.domains.context.jsonld.errors import ContextNotAvailable
from cityhub.domains.context.jsonld.remote import parse_context_document

CONTEXTS_DIR = Path(__file__).resolve().parent.parent / "contexts"
CORE_VERSIONS = ("1.3", "1.4", "1.6", "1.7", "1.8", "1.9")
DEFAULT_CORE_VERSION = "1.8"
CORE_CONTEXT_PREFIX = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context"
UNVERSIONED_CORE_URL = CORE_CONTEXT_PREFIX + ".jsonld"
DEFAULT_VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
_CORE_URL = re.compile(r"^https?://uri\.etsi\.org/ngsi-ld/v1/ngsi-ld-core-context(-v\d+(\.\d+)*)?\.jsonld$")


def core_context_url(version: str) -> str:
    """The canonical URL of one core context version, e.g. ``...-v1.8.jsonld``."""
    return f"{CORE_CONTEXT_PREFIX}-v{version}.jsonld"


def is_core_context_url(url: str) -> bool:
    """Any NGSI-LD core context URL, versioned or not, http or https."""
    return bool(_CORE_URL.match(url))


def canonical_core_url(url: str) -> str:
    """The https form of a core context URL (clients sometimes write http://uri.etsi.org/...)."""
    return "https://" + url.split("://", 1)[1]


@cache
def shipped_context_files() -> dict[str, Path]:
    """Canonical URL → shipped file, from ``contexts/urlmap.json``."""
    mapping = json.loads((CONTEXTS_DIR / "urlmap.json").read_text(encoding="utf-8"))
    return {url: CONTEXTS_DIR / relative for url, relative in mapping.items()}


def read_context_file(url: str, path: Path) -> dict[str, Any]:
    """A local context document; an unreadable file makes the URL unavailable, not the request bad."""
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise ContextNotAvailable(url, f"its local file {path} cannot be read ({exc.strerror})") from None
    return parse_context_document(url, body)
