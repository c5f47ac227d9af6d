"""The CKAN Action API of the open-data portal, at /api/3/action/{name} and /api/action/{name}: CKAN clients
(ckanapi, harvesters, other cities' portals) read the open data as they read any CKAN site.

As CKAN: GET takes the parameters from the query string, POST from a JSON object (or a form) in the body;
answers are ``{"help", "success": true, "result"}`` and errors ``{"help", "success": false, "error":
{"__type", "message"}}`` with 404 (Not Found Error), 403 (Authorization Error) or 409 (Validation Error, which
also names the parameter at fault), never the platform's problem+json: a standard API answers in its
standard's shape. An unknown action is CKAN's 400 with a JSON string.

Everything is anonymous and read-only: a key, if sent, changes nothing; the write actions CKAN clients know
are refused as not authorized (departments manage their data through the exchange API).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from cityhub.domains.exchange.service import ckan_catalogue, ckan_datastore
from cityhub.domains.exchange.service.ckan_catalogue import PackageQuery, Site
from cityhub.domains.exchange.service.ckan_datastore import DatastoreQuery
from cityhub.kernel import jsontext
from cityhub.kernel.db import Database
from cityhub.kernel.errors import Forbidden, NotFound, Problem, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.settings import Settings
from cityhub.kernel.web import get_database, public_rate_limit

ACTION_PATH = "/api/3/action/"
MAX_BODY = 1024 * 1024
MAX_INTEGER = 2**63 - 1  # what the databases take as a limit or an offset
router = APIRouter(tags=["ckan"])


# -- parameters ----------------------------------------------------------------------------------------------

TRUE = frozenset({"true", "1", "yes", "y", "t", "on"})
FALSE = frozenset({"false", "0", "no", "n", "f", "off"})


def invalid(key: str, message: str) -> ValidationProblem:
    """A Validation Error naming the parameter at fault, as CKAN's validators report it."""
    return ValidationProblem(message, field=key)


class Parameters:
    """An action's input read as CKAN's validators read it: an absent value takes its default, a bad one is
    a Validation Error. From a query string every value is text, so lists and objects come as JSON text."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data

    def text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise invalid(key, _("Must be text"))

    def required(self, key: str) -> str:
        value = self.text(key)
        if not value:
            raise invalid(key, _("Missing value"))
        return value

    def integer(self, key: str, default: int) -> int:
        value = self.data.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            return default
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise invalid(key, _("Invalid integer"))
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise invalid(key, _("Invalid integer")) from None
        if abs(number) > MAX_INTEGER:
            raise invalid(key, _("Out of range"))
        return number

    def natural(self, key: str, default: int, maximum: int | None = None) -> int:
        """A whole number from 0; above ``maximum`` it is ``maximum`` (CKAN caps rows, it does not refuse)."""
        number = self.integer(key, default)
        if number < 0:
            raise invalid(key, _("Must be a natural number"))
        return number if maximum is None else min(number, maximum)

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in TRUE:
            return True
        if str(value).strip().lower() in FALSE:
            return False
        raise invalid(key, _("Must be true or false"))

    def decoded(self, key: str) -> Any:
        """A list or an object, sent as such in JSON or as JSON text in a query string."""
        value = self.data.get(key)
        if not isinstance(value, str):
            return value
        try:
            return jsontext.loads(value)
        except jsontext.DecodeError:
            raise invalid(key, _("Must be JSON")) from None

    def strings(self, key: str) -> list[str] | None:
        """A list of texts: a JSON list, or (for ``fields``) text separated by commas."""
        value = self.data.get(key)
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return [part.strip() for part in value.split(",") if part.strip()]
        value = self.decoded(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(each, str) for each in value):
            raise invalid(key, _("Must be a list of strings"))
        return value

    def clauses(self, key: str) -> str | None:
        """Sort clauses: ``"a asc, b desc"`` or a list of them."""
        value = self.data.get(key)
        if isinstance(value, list) and all(isinstance(each, str) for each in value):
            return ", ".join(value)
        return self.text(key)


@dataclass(frozen=True)
class Call:
    session: Session
    site: Site
    parameters: Parameters


Action = Callable[[Call], Any]


# -- actions -------------------------------------------------------------------------------------------------


def package_list(call: Call) -> list[str]:
    """The names of the open datasets (the resources' codes), by name. Optional: ``limit``, ``offset``."""
    parameters = call.parameters
    limit = parameters.natural("limit", 0) or None  # as CKAN: no limit, or 0, lists them all
    return ckan_catalogue.package_names(call.session, limit, parameters.natural("offset", 0))


def package_show(call: Call) -> dict[str, Any]:
    """One open dataset by ``id`` (its name, the resource's code), with its organization and download."""
    return ckan_catalogue.package_show(call.session, call.site, call.parameters.required("id"))


def package_search(call: Call) -> dict[str, Any]:
    """Open datasets matching ``q`` (words in title, summary, code, tags; ``field:value`` terms filter)
    and ``fq`` (``organization:``, ``owner_org:``, ``tags:``, ``name:``, ``id:``, ``license_id:``,
    ``res_format:``; ``-`` negates), sorted by ``sort`` (``name``, ``title``, ``metadata_modified``,
    ``metadata_created``, ``score``; asc or desc), a page of ``rows`` (default 10, at most 1000) from
    ``start``, with the counts of ``facet.field`` (``organization``, ``tags``, ``license_id``,
    ``res_format``; the top ``facet.limit``, default 50)."""
    parameters = call.parameters
    words, terms = ckan_catalogue.parse_q(parameters.text("q"))
    facet_fields = parameters.strings("facet.field") or []
    ckan_catalogue.check_facet_fields(facet_fields)
    query = PackageQuery(
        words=words,
        filters=[
            *terms,
            *ckan_catalogue.parse_fq(parameters.text("fq"), parameters.strings("fq_list") or []),
        ],
        sort=parameters.clauses("sort"),
        rows=parameters.natural("rows", 10, maximum=ckan_catalogue.MAX_ROWS),
        start=parameters.natural("start", 0),
        facet_fields=facet_fields,
        facet_limit=parameters.integer("facet.limit", ckan_catalogue.FACET_LIMIT),
    )
    return ckan_catalogue.package_search(call.session, call.site, query)


def organization_list(call: Call) -> list[Any]:
    """The departments that publish open data: their names, or with ``all_fields`` their dicts with
    ``package_count``. ``sort`` by ``title`` (default), ``name`` or ``package_count``; ``limit`` (at most
    1000, 25 with ``all_fields``, as CKAN), ``offset``."""
    parameters = call.parameters
    all_fields = parameters.flag("all_fields", False)
    most = 25 if all_fields else 1000
    found = ckan_catalogue.organizations(
        call.session,
        parameters.clauses("sort"),
        parameters.natural("limit", most, maximum=most),
        parameters.natural("offset", 0),
    )
    return found if all_fields else [organization["name"] for organization in found]


def organization_show(call: Call) -> dict[str, Any]:
    """One department that publishes open data, by ``id`` (its code), with ``package_count`` (and its
    datasets as ``packages`` with ``include_datasets``)."""
    parameters = call.parameters
    return ckan_catalogue.organization_show(
        call.session, call.site, parameters.required("id"), parameters.flag("include_datasets", False)
    )


def resource_show(call: Call) -> dict[str, Any]:
    """One download by ``id`` (``<dataset name>.csv``: the CSV of the dataset's current version)."""
    return ckan_catalogue.resource_show(call.session, call.site, call.parameters.required("id"))


def datastore_search(call: Call) -> dict[str, Any]:
    """The rows of a download (``resource_id``): ``filters`` (``{field: value | [values] | {"gt": ..}}``),
    ``q`` (words anywhere in a row, or ``{field: words}``), ``fields``, ``sort`` (``"field asc|desc, ..."``),
    ``limit`` (default 100, at most 32000), ``offset``, ``include_total`` (default true). ``_id`` is the row
    number."""
    parameters = call.parameters
    records_format = parameters.text("records_format")
    if records_format not in (None, "objects"):
        raise invalid("records_format", _("Only objects are served"))
    query = DatastoreQuery(
        resource_id=parameters.required("resource_id"),
        filters=_filters(parameters),
        q=_full_text(parameters),
        fields=parameters.strings("fields"),
        sort=parameters.clauses("sort"),
        limit=parameters.natural("limit", ckan_datastore.DEFAULT_LIMIT, maximum=ckan_datastore.MAX_LIMIT),
        offset=parameters.natural("offset", 0),
        include_total=parameters.flag("include_total", True),
    )
    result = ckan_datastore.datastore_search(call.session, query)
    return {**result, "_links": _datastore_links(query)}


def _filters(parameters: Parameters) -> dict[str, Any]:
    filters = parameters.decoded("filters")
    if filters is None:
        return {}
    if not isinstance(filters, dict):
        raise invalid("filters", _("Must be an object of field names and values"))
    return filters


def _full_text(parameters: Parameters) -> str | dict[str, Any] | None:
    """``q`` as words, or as ``{field: words}`` (sent as an object, or as its JSON text in a query string)."""
    value = parameters.data.get("q")
    if isinstance(value, str) and value.lstrip().startswith("{"):
        value = parameters.decoded("q")
    if isinstance(value, dict):
        return value
    return parameters.text("q")


def _datastore_links(query: DatastoreQuery) -> dict[str, str]:
    """This search's first and next pages, as GET addresses."""
    asked: dict[str, Any] = {"resource_id": query.resource_id}
    if query.filters:
        asked["filters"] = json.dumps(query.filters, ensure_ascii=False)
    if query.q:
        asked["q"] = query.q if isinstance(query.q, str) else json.dumps(query.q, ensure_ascii=False)
    if query.fields is not None:
        asked["fields"] = ",".join(query.fields)
    if query.sort:
        asked["sort"] = query.sort
    if query.limit != ckan_datastore.DEFAULT_LIMIT:
        asked["limit"] = query.limit
    start = ACTION_PATH + "datastore_search?" + urlencode(asked)
    return {"start": start, "next": start + "&" + urlencode({"offset": query.offset + query.limit})}


def help_show(call: Call) -> str:
    """What an action (``name``) takes and gives."""
    name = call.parameters.required("name")
    if name not in ACTIONS:
        raise NotFound(_("Action %(name)s does not exist.", name=name))
    return inspect.getdoc(ACTIONS[name]) or ""


ACTIONS: dict[str, Action] = {
    action.__name__: action
    for action in (
        package_list,
        package_show,
        package_search,
        organization_list,
        organization_show,
        resource_show,
        datastore_search,
        help_show,
    )
}
# Those that read rows share the public limit with the portal's downloads.
RATE_LIMITED = frozenset({"datastore_search"})
WRITE_ACTIONS = frozenset(
    f"{kind}_{verb}"
    for kind in ("package", "resource", "organization", "group")
    for verb in ("create", "update", "patch", "delete", "purge")
) | frozenset({"datastore_create", "datastore_upsert", "datastore_delete"})


# -- the endpoint --------------------------------------------------------------------------------------------


@router.get(ACTION_PATH + "{name}", summary="CKAN Action API over the open data (read-only), GET")
@router.post(ACTION_PATH + "{name}", summary="CKAN Action API over the open data (read-only), POST")
@router.api_route("/api/action/{name}", methods=["GET", "POST"], include_in_schema=False)
async def action(name: str, request: Request) -> Response:
    if name in WRITE_ACTIONS:
        raise Forbidden(_("The open-data API is read-only; departments manage their data in the exchange."))
    handler = ACTIONS.get(name)
    if handler is None:
        return _bad_request(_("Action name not known: %(name)s", name=name))
    try:
        data = await _request_data(request)
    except ValueError as exc:
        return _bad_request(_("JSON Error: %(error)s", error=str(exc)))
    if name in RATE_LIMITED:
        public_rate_limit(request)
    site = Site(_settings(request).base_url)
    counted = name in RATE_LIMITED  # a read of rows counts in the open data's reads: a write transaction
    result = await run_in_threadpool(_run, get_database(request), handler, site, Parameters(data), counted)
    return _answer(request, name, {"success": True, "result": result})


def _run(database: Database, handler: Action, site: Site, parameters: Parameters, write: bool) -> Any:
    with database.unit_of_work() if write else database.reading() as session:
        return handler(Call(session, site, parameters))


async def _request_data(request: Request) -> dict[str, Any]:
    """The parameters: a GET's query string (a repeated key gives a list), a POST's JSON object or form."""
    if request.method == "GET":
        return _mixed(request.query_params.multi_items())
    body = await _body(request)
    if not body.strip():
        return {}
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return _mixed(parse_qsl(body.decode(), keep_blank_values=True))
    data = jsontext.loads(body)  # a DecodeError is a ValueError
    if not isinstance(data, dict):
        shown = body[:100].decode(errors="replace")
        raise ValueError(_("The request's JSON must be an object, not %(value)s.", value=shown))
    return data


def _mixed(items: list[tuple[str, str]]) -> dict[str, Any]:
    grouped: dict[str, list[str]] = {}
    for key, value in items:
        grouped.setdefault(key, []).append(value)
    return {key: values[0] if len(values) == 1 else values for key, values in grouped.items()}


async def _body(request: Request) -> bytes:
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ValueError(_("The request's body is larger than 1 MB."))
        chunks.append(chunk)
    return b"".join(chunks)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _help(request: Request, name: str) -> str:
    base = _settings(request).base_url.rstrip("/")
    return f"{base}{ACTION_PATH}help_show?{urlencode({'name': name})}"


def _answer(request: Request, name: str, body: dict[str, Any], status: int = 200) -> Response:
    return jsontext.FastJSONResponse({"help": _help(request, name), **body}, status_code=status)


def _bad_request(message: str) -> Response:
    """CKAN's answer to a request it cannot read: 400 and a JSON string, without the envelope."""
    return jsontext.FastJSONResponse(_("Bad request: %(detail)s", detail=message), status_code=400)


# -- errors --------------------------------------------------------------------------------------------------

NOT_FOUND = "Not Found Error"
NOT_AUTHORIZED = "Authorization Error"
INVALID = "Validation Error"
ERROR_TYPES = {401: NOT_AUTHORIZED, 403: NOT_AUTHORIZED, 404: NOT_FOUND, 409: INVALID, 422: INVALID}


def render_error(request: Request, problem: Problem) -> Response:
    """The error renderer for the CKAN paths: CKAN's envelope, with CKAN's statuses (a Validation Error is
    409; an error CKAN has no name for keeps its status and is named by it)."""
    name = request.url.path.rstrip("/").rsplit("/", 1)[-1]
    detail = str(problem.detail or problem.title or _phrase(problem.status))
    error_type = ERROR_TYPES.get(problem.status)
    status = 409 if error_type == INVALID else problem.status
    error: dict[str, Any] = {"__type": error_type or _phrase(problem.status), "message": detail}
    if error_type == NOT_FOUND:
        error["message"] = _("Not found: %(detail)s", detail=detail)
    elif error_type == NOT_AUTHORIZED:
        error["message"] = _("Access denied: %(detail)s", detail=detail)
    elif error_type == INVALID:
        error.update(_field_errors(problem, detail))
    response = _answer(request, name, {"success": False, "error": error}, status)
    response.headers.update({k: v for k, v in problem.headers.items() if k.lower() != "www-authenticate"})
    return response


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _field_errors(problem: Problem, detail: str) -> dict[str, list[str]]:
    """CKAN's Validation Error names each parameter at fault with its messages."""
    field = problem.extensions.get("field")
    if isinstance(field, str) and field not in ("__type", "message"):
        return {field: [detail]}
    return {}
