"""JSON-LD @context handling for the NGSI-LD context broker: resolution, term mapping, Link/Accept rules.

- ``ContextResolver`` turns an @context value (Link URL, body object, or a list of both) into a
  ``ResolvedContext``/``TermMapper``, applying the shipped core context last, serving shipped, operator-mapped
  and registered contexts locally and downloading the rest with a short timeout and caches (``resolver``).
- ``TermMapper`` expands and compacts names and whole entities by dictionary lookup (``mapper``).
- ``request_context``/``response_format`` and the Link helpers decide where contexts travel (``negotiation``).

Errors carry their NGSI-LD problem type and HTTP status (``errors``). PyLD is not used here; the tests use it
as the reference.
"""

from cityhub.domains.context.jsonld.errors import (
    ContextNotAvailable,
    ContextRequestError,
    InvalidContext,
    JsonLdContextError,
)
from cityhub.domains.context.jsonld.mapper import TermMapper
from cityhub.domains.context.jsonld.negotiation import (
    JSONLD_CONTEXT_REL,
    Link,
    RequestContext,
    ResponseFormat,
    context_link_header,
    context_url_from_link,
    parse_link_header,
    request_context,
    response_format,
)
from cityhub.domains.context.jsonld.processing import TermDefinition
from cityhub.domains.context.jsonld.remote import HttpFetcher
from cityhub.domains.context.jsonld.resolver import ContextResolver, ResolvedContext, context_key
from cityhub.domains.context.jsonld.sources import (
    CORE_VERSIONS,
    DEFAULT_VOCAB,
    UNVERSIONED_CORE_URL,
    core_context_url,
    is_core_context_url,
)

__all__ = [
    "CORE_VERSIONS",
    "DEFAULT_VOCAB",
    "JSONLD_CONTEXT_REL",
    "UNVERSIONED_CORE_URL",
    "ContextNotAvailable",
    "ContextRequestError",
    "ContextResolver",
    "HttpFetcher",
    "InvalidContext",
    "JsonLdContextError",
    "Link",
    "RequestContext",
    "ResolvedContext",
    "ResponseFormat",
    "TermDefinition",
    "TermMapper",
    "context_key",
    "context_link_header",
    "context_url_from_link",
    "core_context_url",
    "is_core_context_url",
    "parse_link_header",
    "request_context",
    "response_format",
]
