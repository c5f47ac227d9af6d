"""Data behind a resource from elsewhere: an API answering JSON or CSV, or an entity type of the context hub,
polled on the resource's update cycle and loaded as versions through the same checks as uploaded files.

- **Configuring** (the owner, audited): ``upload`` (files only), ``api`` (an http(s) address, JSON or CSV, a
  dotted path to the rows in a JSON answer; no credentials: nothing secret is stored) or ``ngsi-ld`` (a
  tenant, an entity type and data item -> attribute names, every required item mapped; the owner must be
  allowed to read that tenant). A new source is due at once.
- **Polling**: the periodic job ``exchange.sources.poll`` queues one ``exchange.sources.fetch`` job per
  resource (draft or published) whose last poll is older than its update cycle (realtime 5 minutes, daily,
  weekly, monthly 30 days, quarterly 91 days, yearly 365 days; irregular: only by hand). Each runs alone:
  the answer is fetched *before* the job's transaction starts (no database lock is held while a slow source
  answers), within ``source_timeout_seconds`` and ``max_upload_mb``, then stored. Owners poll now by hand
  (API, CLI).
- **Storing**: an answer whose SHA-256 equals the current (or newest) version's makes no version, only
  ``polled_at``; anything else is a new version through ``loads.new_version``: valid and current, or invalid
  with its report. A source that cannot be read (unreachable, timeout, HTTP error, too large, not JSON, no
  rows at the path, unknown tenant) becomes an **invalid version whose report says why** — so the owner sees
  the failure in the resource's versions like any refused load — unless the newest version already records
  the same failure (a source that stays down adds no version per poll).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal

import httpx
import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.domains.context import check_entity_reading, entity_rows
from cityhub.domains.exchange import schemas
from cityhub.domains.exchange.models import Resource, Version
from cityhub.domains.exchange.service import loads
from cityhub.domains.exchange.service.access import ADMINISTER, owned_resource, resource_by_code
from cityhub.domains.exchange.settings import ExchangeSettings
from cityhub.domains.identity import Principal, system_principal
from cityhub.kernel import audit, jobs
from cityhub.kernel.db import Database, utcnow
from cityhub.kernel.errors import Conflict, Problem, ValidationProblem
from cityhub.kernel.i18n import gettext as _

log = logging.getLogger("cityhub.exchange.sources")

POLLED = ("api", "ngsi-ld")
POLLED_STATES = ("draft", "published")
CYCLES = {
    "realtime": timedelta(minutes=5),
    "daily": timedelta(days=1),
    "weekly": timedelta(days=7),
    "monthly": timedelta(days=30),
    "quarterly": timedelta(days=91),
    "yearly": timedelta(days=365),
}  # "irregular": polled only by hand
FETCH_JOB = "exchange.sources.fetch"
QUEUE_BUCKET = timedelta(minutes=1)  # a resource is queued at most once a minute
CONNECT_SECONDS = 5.0
MIB = 1024 * 1024
ACCEPT = {"json": "application/json", "csv": "text/csv"}
POLLER = "exchange-poller"  # audited as system:exchange-poller
Outcome = Literal["loaded", "invalid", "unchanged", "skipped"]


# -- configuring --------------------------------------------------------------------------------------------


def configure(
    session: Session,
    principal: Principal,
    code: str,
    data: schemas.UploadSourceIn | schemas.ApiSourceIn | schemas.ContextSourceIn,
) -> Resource:
    """Set where the resource's data comes from (the owner); a polled source is due at once."""
    resource = owned_resource(session, principal, code)
    config: dict[str, Any] = {}
    if isinstance(data, schemas.ApiSourceIn):
        config = {"url": str(data.url), "format": data.format, "records": data.records}
    elif isinstance(data, schemas.ContextSourceIn):
        _check_mapping(resource, data.attributes)
        check_entity_reading(session, principal, data.tenant, data.entity_type, data.attributes.values())
        config = {"tenant": data.tenant, "entity_type": data.entity_type, "attributes": dict(data.attributes)}
    resource.source = data.source
    resource.source_config = config
    resource.polled_at = None
    audit.record(
        session,
        actor=principal.actor,
        action="exchange.resource.source_set",
        object_type="exchange_resource",
        object_id=resource.code,
        details={"source": data.source, **config},
    )
    return resource


def _check_mapping(resource: Resource, attributes: dict[str, str]) -> None:
    names = [item["name"] for item in resource.data_items]
    unknown = [name for name in attributes if name not in names]
    if unknown:
        raise ValidationProblem(
            _("The resource has no data items %(names)s.", names=", ".join(unknown)), field="attributes"
        )
    unmapped = [
        item["name"]
        for item in resource.data_items
        if item.get("required") and item["name"] not in attributes
    ]
    if unmapped:
        raise ValidationProblem(
            _("Map the required data items %(names)s to attributes.", names=", ".join(unmapped)),
            field="attributes",
        )


def shape(resource: Resource) -> schemas.SourceOut:
    return schemas.SourceOut(
        resource=resource.code,
        source=resource.source,
        config=resource.source_config or {},
        update_cycle=resource.update_cycle,
        polled_at=resource.polled_at,
        next_poll_at=next_poll_at(resource),
    )


def next_poll_at(resource: Resource) -> datetime | None:
    """When the poller takes the resource next (None: an upload, an irregular cycle, a retired resource)."""
    every = CYCLES.get(resource.update_cycle)
    if resource.source not in POLLED or resource.status not in POLLED_STATES or every is None:
        return None
    return resource.polled_at + every if resource.polled_at else utcnow()


def is_due(resource: Resource, now: datetime) -> bool:
    moment = next_poll_at(resource)
    return moment is not None and (resource.polled_at is None or moment <= now)


# -- polling ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What to poll, as configured when the poll began (a change meanwhile skips the poll)."""

    code: str
    source: str
    config: dict[str, Any]


@dataclass(frozen=True)
class Fetched:
    content: bytes | None = None  # an API's answer; None for the context hub (read while storing)
    error: str | None = None


@dataclass(frozen=True)
class Polled:
    code: str
    outcome: Outcome
    version: Version | None
    current_version_id: int | None
    polled_at: datetime | None
    error: str | None = None


def target_of(session: Session, principal: Principal, code: str) -> Target:
    """The source of a resource its owner polls by hand; 409 for a resource whose data is uploaded."""
    resource = owned_resource(session, principal, code)
    if resource.source not in POLLED:
        raise Conflict(
            _("The data of %(code)s is uploaded; it has no source to poll.", code=code), slug="no-source"
        )
    return Target(resource.code, resource.source, dict(resource.source_config))


def fetch(target: Target, settings: ExchangeSettings) -> Fetched:
    """An API source's answer (no database is touched): within ``source_timeout_seconds`` in all and
    ``max_upload_mb``, or the error that stopped it. Nothing to fetch for the context hub."""
    if target.source != "api":
        return Fetched()
    total = settings.source_timeout_seconds
    limit = settings.max_upload_mb * MIB
    deadline = time.monotonic() + total
    too_slow = _("The source did not answer within %(seconds)s seconds.", seconds=f"{total:g}")
    headers = {"Accept": ACCEPT.get(target.config.get("format", "json"), "*/*")}
    timeout = httpx.Timeout(total, connect=min(CONNECT_SECONDS, total))
    chunks: list[bytes] = []
    size = 0
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=True, max_redirects=5) as client,
            client.stream("GET", target.config["url"], headers=headers) as answer,
        ):
            if not answer.is_success:
                return Fetched(error=_("The source answered HTTP %(status)s.", status=answer.status_code))
            for chunk in answer.iter_bytes():
                size += len(chunk)
                if size > limit:
                    return Fetched(error=_("The source's answer is larger than %(mb)s MB.", mb=limit // MIB))
                if time.monotonic() > deadline:
                    return Fetched(error=too_slow)
                chunks.append(chunk)
    except httpx.TimeoutException:
        return Fetched(error=too_slow)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return Fetched(
            error=_("The source could not be reached: %(error)s", error=str(exc) or type(exc).__name__)
        )
    return Fetched(content=b"".join(chunks))


def store(
    session: Session,
    principal: Principal,
    target: Target,
    fetched: Fetched,
    now: datetime,
    max_errors: int = 200,
    *,
    only_if_due: bool = False,
) -> Polled:
    """The fetched answer (or the context hub's entities) as the resource's next version, unless unchanged."""
    resource = resource_by_code(session, target.code)
    session.refresh(resource, with_for_update=True)  # one poll of a resource at a time (PostgreSQL)
    changed = resource.source != target.source or resource.source_config != target.config
    if changed or (only_if_due and not is_due(resource, now)):
        return Polled(resource.code, "skipped", None, resource.current_version_id, resource.polled_at)
    resource.polled_at = now
    rows, digest, error = _rows_of(session, resource, target, fetched)
    if _unchanged(session, resource, digest, error):
        return Polled(resource.code, "unchanged", None, resource.current_version_id, now, error)
    if error is not None:
        log.warning("exchange source of %s failed: %s", resource.code, error)
    version = loads.new_version(
        session,
        principal,
        resource,
        target.source,
        _origin(target),
        digest,
        rows,
        max_errors=max_errors,
        keep_unreadable=True,
    )
    outcome: Outcome = "loaded" if version.valid else "invalid"
    return Polled(resource.code, outcome, version, resource.current_version_id, now, error)


def _rows_of(
    session: Session, resource: Resource, target: Target, fetched: Fetched
) -> tuple[loads.Rows, str | None, str | None]:
    """How to read the rows, their SHA-256 (None after a failure) and the failure, if any."""
    error = fetched.error
    if error is None and target.source == "api":
        content = fetched.content or b""
        read = loads.file_rows(target.config["format"], content, target.config.get("records"))
        return read, hashlib.sha256(content).hexdigest(), None
    if error is None:
        try:
            table = _entity_table(session, resource, target.config)
        except Problem as problem:
            error = problem.detail or problem.slug
        else:
            return partial(loads.object_rows, table), hashlib.sha256(orjson.dumps(table)).hexdigest(), None
    return _failing(error), None, error


def _entity_table(session: Session, resource: Resource, config: dict[str, Any]) -> list[dict[str, Any]]:
    """The entities as rows with every data item (those mapped to no attribute: empty)."""
    columns: dict[str, str] = config["attributes"]
    empty = dict.fromkeys(item["name"] for item in resource.data_items)
    return [
        {**empty, **row} for row in entity_rows(session, config.get("tenant"), config["entity_type"], columns)
    ]


def _failing(error: str) -> loads.Rows:
    def read(_checker: loads.RowChecker, _report: loads.Report) -> Iterable[dict[str, Any]]:
        raise loads.Unreadable(error)

    return read


def _unchanged(session: Session, resource: Resource, digest: str | None, error: str | None) -> bool:
    """The same answer as the current or newest version, or the same failure as the newest."""
    newest = session.scalar(
        select(Version).where(Version.resource_id == resource.id).order_by(Version.number.desc()).limit(1)
    )
    if newest is None:
        return False
    if error is not None:
        messages = [entry.get("message") for entry in (newest.report or {}).get("errors", [])]
        return not newest.valid and newest.sha256 is None and messages == [error]
    current = session.get(Version, resource.current_version_id) if resource.current_version_id else None
    return digest in {newest.sha256, current.sha256 if current else None}


def _origin(target: Target) -> str:
    """What the version list shows as the version's file: the address, or tenant/type."""
    if target.source == "api":
        return str(target.config["url"])
    return f"{target.config.get('tenant') or '-'}/{target.config['entity_type']}"


def poll(database: Database, principal: Principal, code: str, settings: ExchangeSettings) -> Polled:
    """Poll one resource now (its owner, or the platform): look up, fetch outside any transaction, store."""
    with database.reading() as session:
        target = target_of(session, principal, code)
    fetched = fetch(target, settings)
    with database.unit_of_work() as session:
        return store(session, principal, target, fetched, utcnow(), settings.max_report_errors)


# -- the jobs -----------------------------------------------------------------------------------------------


def due_targets(session: Session, now: datetime) -> list[Target]:
    """The polled resources whose last poll is older than their update cycle."""
    candidates = session.scalars(
        select(Resource)
        .where(
            Resource.source.in_(POLLED),
            Resource.status.in_(POLLED_STATES),
            Resource.update_cycle.in_(list(CYCLES)),
        )
        .order_by(Resource.id)
    )
    return [
        Target(resource.code, resource.source, dict(resource.source_config))
        for resource in candidates
        if is_due(resource, now)
    ]


def queue_due(session: Session, now: datetime) -> int:
    """Queue a fetch job for every due resource (the periodic job); how many were queued."""
    bucket = jobs.period_start(now, QUEUE_BUCKET).isoformat()
    queued = 0
    for target in due_targets(session, now):
        payload = {"code": target.code, "source": target.source, "config": target.config}
        if jobs.enqueue(session, FETCH_JOB, payload, dedupe_key=f"{FETCH_JOB}:{target.code}:{bucket}"):
            queued += 1
    return queued


def poll_queued(session: Session, payload: dict[str, Any], settings: ExchangeSettings) -> Polled:
    """One queued fetch: the answer first, before ``session`` begins its transaction (on SQLite a write
    transaction holds the database), then the store — unless the resource was polled or changed meanwhile."""
    target = Target(str(payload["code"]), str(payload["source"]), dict(payload["config"]))
    fetched = fetch(target, settings)
    principal = system_principal(session, POLLER, {ADMINISTER})
    return store(session, principal, target, fetched, utcnow(), settings.max_report_errors, only_if_due=True)
