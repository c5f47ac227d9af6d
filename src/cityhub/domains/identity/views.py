"""Identity pages: login, the resident's card, household and consents, and the identity console.

Thin routes: parse the form, call the service, render a template from ``templates/identity/``. Pages use the
signed-cookie session (``page_principal``); every unsafe request is CSRF-checked. Form errors of the console
are shown next to the form: the service call runs in a savepoint, so a refused change leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.domains.identity.dependencies import (
    SESSION_ACCOUNT_KEY,
    SESSION_TOKEN_KEY,
    identity_settings,
    page_principal,
)
from cityhub.domains.identity.models import ORG_UNIT_KINDS, Account, ApiKey, OrgUnit, Person, RoleAssignment
from cityhub.domains.identity.service import (
    accounts,
    apikeys,
    card,
    consent,
    notifications,
    orgs,
    page_sessions,
    people,
)
from cityhub.domains.identity.service.access import Principal, require
from cityhub.kernel.db import utcnow
from cityhub.kernel.domain import access_catalog
from cityhub.kernel.errors import NotFound, Problem, Unauthorized
from cityhub.kernel.i18n import get_locale
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.i18n import lazy_gettext as _l
from cityhub.kernel.pagination import Page, PageParams, Paging, fetch_page
from cityhub.kernel.qr import qr_svg
from cityhub.kernel.ratelimit import enforce
from cityhub.kernel.web import (
    AppSettings,
    CsrfChecked,
    DbSession,
    DbWriteSession,
    SameSiteOnly,
    attempt,
    client_address,
    flash,
    get_database,
    render,
    see_other,
)

router = APIRouter()

LOGIN_PATH = "/login"

LABELS: dict[str, dict[Any, Any]] = {
    "kind": {
        "city": _l("City"),
        "district": _l("District"),
        "subdistrict": _l("Subdistrict"),
        "community": _l("Community"),
        "building": _l("Building"),
        "household": _l("Household"),
    },
    "gender": {"M": _l("Male"), "F": _l("Female"), "U": _l("Not stated")},
    "level": {
        0: _l("Not verified"),
        1: _l("Phone verified"),
        2: _l("Identity verified"),
        3: _l("Verified in person"),
    },
    "relation": {
        "head": _l("Head of household"),
        "spouse": _l("Spouse"),
        "child": _l("Child"),
        "parent": _l("Parent"),
        "grandparent": _l("Grandparent"),
        "grandchild": _l("Grandchild"),
        "sibling": _l("Sibling"),
        "tenant": _l("Tenant"),
        "other": _l("Other"),
    },
    "link": {"guardian": _l("Guardian"), "carer": _l("Carer"), "emergency_contact": _l("Emergency contact")},
}
# Purposes a resident is asked about on the consents page; other active consents are listed by their code.
CONSENT_PURPOSES = {
    "marketing": _l("Offers and coupons from merchants near me"),
    "health.records": _l("Share my health records with the clinics that treat me"),
    "energy.insights": _l("Use my meter readings for energy-saving advice"),
    "home.care": _l("Let the community care desk receive alarms from my home devices"),
}


# --- page plumbing -------------------------------------------------------------------------------------


def page_user(
    request: Request, session: DbSession, user: Annotated[Principal | None, Depends(page_principal)]
) -> Principal | None:
    """The logged-in page user or None; also puts the city's name in the page header."""
    _remember_city(request, session)
    return user


PageUser = Annotated[Principal | None, Depends(page_user)]


def signed_in(request: Request, user: PageUser) -> Principal:
    """The page user; anonymous visitors are sent to the login page and come back afterwards."""
    if user is not None:
        return user
    if request.headers.get("HX-Request"):
        back = urlsplit(request.headers.get("HX-Current-URL", "/")).path or "/"
        raise Unauthorized(slug="login-required", headers={"HX-Redirect": _login_url(back)})
    raise Problem(status=303, slug="login-required", headers={"Location": _login_url(_here(request))})


SignedIn = Annotated[Principal, Depends(signed_in)]


def _remember_city(request: Request, session: Session) -> None:
    root = orgs.root_unit(session)
    if root is not None:
        request.state.city_name = _unit_name(root)


def _unit_name(unit: OrgUnit) -> str:
    return unit.name_en if get_locale() == "en" and unit.name_en else unit.name


def _here(request: Request) -> str:
    return f"{request.url.path}?{request.url.query}" if request.url.query else request.url.path


def _login_url(next_path: str) -> str:
    return f"{LOGIN_PATH}?{urlencode({'next': next_path})}"


def safe_next(value: str | None) -> str:
    """Only a local path may be a redirect target (no scheme, host or protocol-relative ``//``)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(char) < 32 for char in value):
        return "/"
    return value


def _page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    zone = ZoneInfo(request.app.state.settings.timezone)

    def when(moment: datetime | None) -> str:
        return format_datetime(moment, "short", tzinfo=zone, locale=get_locale()) if moment else "—"

    return render(
        request, name, {"labels": LABELS, "when": when, "unit_name": _unit_name, **context}, status_code
    )


def _person_id(user: Principal) -> int:
    if user.person_id is None:
        raise NotFound(_("This account has no person record."))
    return user.person_id


def _page_of(rows: list[Any], total: int, paging: PageParams) -> Page[Any]:
    return Page(items=rows, total=total, limit=paging.limit, offset=paging.offset)


# --- login and logout ----------------------------------------------------------------------------------


@router.get(LOGIN_PATH)
def login_form(
    request: Request, user: PageUser, next_path: Annotated[str, Query(alias="next")] = "/"
) -> Response:
    if user is not None:
        return see_other(safe_next(next_path))
    return _page(request, "identity/login.html", {"next": safe_next(next_path), "username": ""})


@router.post(LOGIN_PATH, dependencies=[CsrfChecked])
def login(
    request: Request,
    settings: AppSettings,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next_path: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    target = safe_next(next_path)
    try:
        enforce(
            settings.rate_limits.storage_uri, settings.rate_limits.login, "login", client_address(request)
        )
        account = accounts.authenticate(
            get_database(request), identity_settings(), username.strip(), password
        )
    except Problem as problem:
        return _login_refused(request, problem, username, target)
    with get_database(request).unit_of_work() as session:
        token = page_sessions.start(session, account.id, settings.session_hours)
    request.session.clear()
    request.session[SESSION_ACCOUNT_KEY] = account.id
    request.session[SESSION_TOKEN_KEY] = token  # a new session id, hence new CSRF tokens
    return see_other(target)


def _login_refused(request: Request, problem: Problem, username: str, target: str) -> Response:
    with get_database(request).reading() as session:
        _remember_city(request, session)
    context = {"error": problem.detail, "username": username, "next": target}
    response = _page(request, "identity/login.html", context, problem.status)
    if "Retry-After" in problem.headers:
        response.headers["Retry-After"] = problem.headers["Retry-After"]
    return response


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request) -> Response:
    account_id = request.session.get(SESSION_ACCOUNT_KEY)
    token = request.session.get(SESSION_TOKEN_KEY)
    if isinstance(account_id, int) and isinstance(token, str):
        with get_database(request).unit_of_work() as session:
            page_sessions.end(session, account_id, token)
    request.session.clear()
    flash(request, _("You have logged out."))
    return see_other(LOGIN_PATH)


# --- the citizen card ----------------------------------------------------------------------------------


def _card_code(person: Person, settings: AppSettings) -> dict[str, Any]:
    identity = identity_settings()
    issued = card.issue_card(person, card.signing_key(settings, identity), identity.card_token_seconds)
    lifetime = identity.card_token_seconds
    return {
        "qr_svg": Markup(qr_svg(issued.token)),  # noqa: S704 - segno's SVG of our own token
        "expires_at": issued.expires_at,
        "seconds_left": lifetime,
        "refresh_seconds": max(5, min(60, lifetime // 2)),
    }


@router.get("/me/card")
def card_page(request: Request, user: SignedIn, session: DbSession, settings: AppSettings) -> Response:
    person = people.get_person(session, _person_id(user))
    return _page(request, "identity/card.html", {"person": person, **_card_code(person, settings)})


@router.get("/me/card/code")
def card_code_fragment(
    request: Request, user: SignedIn, session: DbSession, settings: AppSettings
) -> Response:
    """The QR code alone; the card page swaps it in with htmx before the code expires."""
    person = people.get_person(session, _person_id(user))
    return _page(request, "identity/_card_code.html", _card_code(person, settings))


@router.post("/me/card/revoke", dependencies=[CsrfChecked])
def revoke_card(request: Request, user: SignedIn, session: DbSession) -> Response:
    person = people.get_person(session, _person_id(user))
    card.revoke_cards(session, person, user.actor)
    flash(request, _("All your earlier card codes are now invalid; the code below is new."))
    return see_other("/me/card")


# --- household and consents ----------------------------------------------------------------------------


@router.get("/me/household")
def household_page(request: Request, user: SignedIn, session: DbSession) -> Response:
    person_id = _person_id(user)
    found = people.household_of(session, person_id)
    household, members = found if found else (None, [])
    context = {
        "household": household,
        "places": _ancestors(session, household) if household else [],
        "members": members,
        "cared_for": _links(session, person_id, people.dependants_of),
        "carers": _links(session, person_id, people.guardians_of),
    }
    return _page(request, "identity/household.html", context)


def _links(
    session: Session, person_id: int, lookup: Callable[[Session, int, str], list[Person]]
) -> list[tuple[Person, str]]:
    return [(other, kind) for kind in people.FAMILY_LINK_KINDS for other in lookup(session, person_id, kind)]


def _ancestors(session: Session, unit: OrgUnit) -> list[OrgUnit]:
    """The units above ``unit``, from the top of the tree down."""
    ids = [int(part) for part in unit.path.strip("/").split("/")[:-1] if part]
    if not ids:
        return []
    return list(session.scalars(select(OrgUnit).where(OrgUnit.id.in_(ids)).order_by(OrgUnit.depth)))


@router.get("/me/consents")
def consents_page(request: Request, user: SignedIn, session: DbSession) -> Response:
    history = consent.consent_history(session, _person_id(user))
    active = {record.purpose: record for record in history if record.withdrawn_at is None}
    purposes = {code: str(label) for code, label in CONSENT_PURPOSES.items()}
    purposes.update({code: code for code in active if code not in purposes})
    context = {"purposes": purposes, "active": active, "history": history}
    return _page(request, "identity/consents.html", context)


@router.post("/me/consents", dependencies=[CsrfChecked])
def grant_consent(
    request: Request, user: SignedIn, session: DbSession, purpose: Annotated[str, Form(max_length=64)]
) -> Response:
    consent.grant_consent(session, _person_id(user), purpose, actor=user.actor, channel="web")
    flash(request, _("Thank you; your consent is recorded."))
    return see_other("/me/consents")


@router.post("/me/consents/withdraw", dependencies=[CsrfChecked])
def withdraw_consent(
    request: Request, user: SignedIn, session: DbSession, purpose: Annotated[str, Form(max_length=64)]
) -> Response:
    if consent.withdraw_consent(session, _person_id(user), purpose, actor=user.actor):
        flash(request, _("Your consent is withdrawn."))
    return see_other("/me/consents")


# --- inbox --------------------------------------------------------------------------------------------

INBOX_PATH = "/me/inbox"


def _account_id(user: Principal) -> int:
    if user.kind != "account":
        raise NotFound(_("This account has no person record."))
    return user.id


def _preference_rows(session: Session, account_id: int) -> list[dict[str, Any]]:
    """The topics offered on the page, each with the channels in force: all topics, the ones chosen before
    and the ones received lately."""
    chosen = [row.topic for row in notifications.preferences(session, account_id)]
    received = notifications.recent_topics(session, account_id)
    topics = list(dict.fromkeys([notifications.ALL_TOPICS, *chosen, *received]))
    rows = []
    for topic in topics:
        channels = notifications.channels_for(session, account_id, topic)
        rows.append({"topic": topic, "email": channels.email, "webhook": channels.webhook})
    return rows


def _delivery_targets(session: Session, user: Principal, account_id: int) -> dict[str, Any]:
    person = session.get(Person, user.person_id) if user.person_id else None
    return {
        "email": person.email if person else None,
        "webhook": notifications.get_webhook(session, account_id),
    }


@router.get(INBOX_PATH)
def inbox_page(
    request: Request,
    user: SignedIn,
    session: DbSession,
    paging: Paging,
    unread: Annotated[bool, Query()] = False,
) -> Response:
    account_id = _account_id(user)
    rows, total = fetch_page(session, notifications.inbox(account_id, unread_only=unread), paging)
    context = {
        "page": _page_of(rows, total, paging),
        "unread_only": unread,
        "unread_count": notifications.unread_count(session, account_id),
        "preferences": _preference_rows(session, account_id),
        **_delivery_targets(session, user, account_id),
    }
    return _page(request, "identity/inbox.html", context)


@router.post(INBOX_PATH + "/{notification_id}/read", dependencies=[CsrfChecked])
def read_notification(
    request: Request,
    user: SignedIn,
    session: DbSession,
    notification_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
) -> Response:
    """htmx swaps in the item, now read; without JavaScript the form comes back to the inbox."""
    row = notifications.mark_read(session, _account_id(user), notification_id)
    if request.headers.get("HX-Request"):
        return _page(request, "identity/_inbox_item.html", {"item": row})
    return see_other(INBOX_PATH)


@router.post(INBOX_PATH + "/read-all", dependencies=[CsrfChecked])
def read_all_notifications(request: Request, user: SignedIn, session: DbSession) -> Response:
    marked = notifications.mark_all_read(session, _account_id(user))
    if marked:
        flash(request, _("All messages are marked read."))
    return see_other(INBOX_PATH)


@router.post(INBOX_PATH + "/preferences", dependencies=[CsrfChecked])
def save_notification_preference(
    request: Request,
    user: SignedIn,
    session: DbSession,
    topic: Annotated[str, Form(max_length=notifications.MAX_TOPIC)],
    email: Annotated[bool, Form()] = False,
    webhook: Annotated[bool, Form()] = False,
) -> Response:
    """Checkboxes: an unticked box is not sent, hence the False defaults."""
    notifications.set_preference(session, _account_id(user), topic, email=email, webhook=webhook)
    flash(request, _("Your choice is saved."))
    return see_other(INBOX_PATH + "#preferences")


# --- console: index and org units ----------------------------------------------------------------------


@router.get("/admin")
def admin_index(request: Request, user: SignedIn) -> Response:
    require(user, "identity.orgs.read")
    return _page(request, "identity/admin/index.html", {})


def _org_units_context(
    session: Session, user: Principal, paging: PageParams, parent_id: int | None, q: str | None
) -> dict[str, Any]:
    scopes = user.scopes("identity.orgs.read")
    statement = orgs.search_units(scopes, q)
    parent = None
    if parent_id is not None and not q:
        parent = orgs.get_unit(session, parent_id)
        require(user, "identity.orgs.read", parent.path)
        statement = statement.where(OrgUnit.parent_id == parent.id)
    elif not q:
        statement = statement.where(OrgUnit.path.in_(scopes))  # the top of each subtree the user may see
    rows, total = fetch_page(session, statement.order_by(OrgUnit.path), paging)
    above = _ancestors(session, parent) if parent else []
    return {
        "page": _page_of(rows, total, paging),
        "parent": parent,
        "q": q or "",
        "breadcrumb": [unit for unit in above if user.can("identity.orgs.read", unit.path)],
        "child_kind": _child_kind(session, parent),
        "can_manage": user.can("identity.orgs.manage", parent.path if parent else None),
        "form": {},
    }


def _child_kind(session: Session, parent: OrgUnit | None) -> str | None:
    """The kind a new unit here would have (a city only while the tree is empty)."""
    if parent is None:
        return "city" if orgs.root_unit(session) is None else None
    index = ORG_UNIT_KINDS.index(parent.kind)
    return ORG_UNIT_KINDS[index + 1] if index + 1 < len(ORG_UNIT_KINDS) else None


@router.get("/admin/org-units")
def org_units_page(
    request: Request,
    user: SignedIn,
    session: DbSession,
    paging: Paging,
    parent_id: int | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    require(user, "identity.orgs.read")
    return _page(
        request, "identity/admin/org_units.html", _org_units_context(session, user, paging, parent_id, q)
    )


@router.post("/admin/org-units", dependencies=[CsrfChecked])
def create_org_unit(
    request: Request,
    user: SignedIn,
    session: DbSession,
    paging: Paging,
    kind: Annotated[str, Form(max_length=16)],
    code: Annotated[str, Form(min_length=1, max_length=64)],
    name: Annotated[str, Form(min_length=1, max_length=200)],
    parent_code: Annotated[str | None, Form(max_length=64)] = None,
    name_en: Annotated[str | None, Form(max_length=200)] = None,
    address: Annotated[str | None, Form(max_length=400)] = None,
    lon: Annotated[float | None, Form(ge=-180, le=180)] = None,
    lat: Annotated[float | None, Form(ge=-90, le=90)] = None,
) -> Response:
    require(user, "identity.orgs.manage")
    data = orgs.OrgUnitInput(
        kind=kind,
        code=code.strip(),
        name=name.strip(),
        parent_code=parent_code,
        name_en=name_en,
        address=address,
        lon=lon,
        lat=lat,
    )
    outcome = attempt(session, lambda: orgs.add_unit(session, user, data))
    if isinstance(outcome, Problem):
        parent_id = orgs.get_unit_by_code(session, parent_code).id if parent_code else None
        context = _org_units_context(session, user, paging, parent_id, None)
        context.update(error=outcome.detail, form=data.__dict__)
        return _page(request, "identity/admin/org_units.html", context, outcome.status)
    flash(request, _("Org unit %(name)s created.", name=outcome.name))
    return see_other(
        f"/admin/org-units?parent_id={outcome.parent_id}" if outcome.parent_id else "/admin/org-units"
    )


@router.post("/admin/org-units/import", dependencies=[CsrfChecked])
def import_org_units(
    request: Request, user: SignedIn, session: DbSession, paging: Paging, file: Annotated[UploadFile, File()]
) -> Response:
    require(user, "identity.orgs.manage")
    outcome = attempt(session, lambda: _import_units(session, user, file))
    if isinstance(outcome, Problem):
        context = _org_units_context(session, user, paging, None, None)
        context.update(import_error=outcome.detail)
        return _page(request, "identity/admin/org_units.html", context, outcome.status)
    flash(request, _("Imported %(count)s org units.", count=outcome))
    return see_other("/admin/org-units")


def _import_units(session: Session, user: Principal, file: UploadFile) -> int:
    content = file.file.read(orgs.MAX_IMPORT_BYTES + 1)
    return orgs.import_file(session, user, file.filename or "upload.csv", content)


# --- console: people -----------------------------------------------------------------------------------


@router.get("/admin/people", dependencies=[SameSiteOnly])
def people_page(
    request: Request,
    user: SignedIn,
    session: DbWriteSession,
    paging: Paging,
    q: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    require(user, "identity.people.read")
    rows, total = people.list_people_audited(session, user, q, paging)
    return _page(request, "identity/admin/people.html", {"page": _page_of(rows, total, paging), "q": q or ""})


@router.get("/admin/people/{person_id}", dependencies=[SameSiteOnly])
def person_page(
    request: Request,
    user: SignedIn,
    session: DbWriteSession,
    person_id: int,
    purpose: Annotated[str, Query(min_length=2, max_length=200)] = "administration",
) -> Response:
    """One person's record: an audited read, like the API's."""
    require(user, "identity.people.read")
    person = people.read_person_audited(session, user, person_id, purpose)
    home = session.get(OrgUnit, person.home_unit_id) if person.home_unit_id else None
    account = session.scalar(select(Account).where(Account.person_id == person.id).limit(1))
    context = {"person": person, "home": home, "account": account, "purpose": purpose}
    return _page(request, "identity/admin/person.html", context)


# --- console: roles ------------------------------------------------------------------------------------


def _roles_context(session: Session, user: Principal, username: str | None) -> dict[str, Any]:
    account = session.scalar(select(Account).where(Account.username == username)) if username else None
    return {
        "username": username or "",
        "account": account,
        "assignments": _assignments_in_scope(session, user, account) if account else [],
        "roles": access_catalog.roles,
        "form": {},
    }


def _assignments_in_scope(
    session: Session, user: Principal, account: Account
) -> list[tuple[RoleAssignment, OrgUnit]]:
    return accounts.assignments_in_scope(session, account.id, user.scopes("identity.roles.manage"))


@router.get("/admin/roles")
def roles_page(
    request: Request,
    user: SignedIn,
    session: DbSession,
    username: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    require(user, "identity.roles.manage")
    return _page(request, "identity/admin/roles.html", _roles_context(session, user, username))


@router.post("/admin/roles", dependencies=[CsrfChecked])
def grant_role(
    request: Request,
    user: SignedIn,
    session: DbSession,
    username: Annotated[str, Form(max_length=64)],
    role: Annotated[str, Form(max_length=32)],
    org_unit_code: Annotated[str, Form(max_length=64)],
) -> Response:
    require(user, "identity.roles.manage")

    def grant() -> RoleAssignment:
        account = session.scalar(select(Account).where(Account.username == username))
        if account is None:
            raise NotFound(_("There is no account %(username)s.", username=username))
        unit = orgs.get_unit_by_code(session, org_unit_code.strip())
        return accounts.grant_role(session, user, account, role, unit)

    outcome = attempt(session, grant)
    if isinstance(outcome, Problem):
        context = _roles_context(session, user, username)
        context.update(error=outcome.detail, form={"role": role, "org_unit_code": org_unit_code})
        return _page(request, "identity/admin/roles.html", context, outcome.status)
    flash(request, _("Role granted."))
    return see_other(f"/admin/roles?{urlencode({'username': username})}")


@router.post("/admin/roles/{assignment_id}/withdraw", dependencies=[CsrfChecked])
def withdraw_role(
    request: Request,
    user: SignedIn,
    session: DbSession,
    assignment_id: int,
    username: Annotated[str, Form(max_length=64)],
) -> Response:
    accounts.withdraw_role(session, user, assignment_id)
    flash(request, _("Role withdrawn."))
    return see_other(f"/admin/roles?{urlencode({'username': username})}")


# --- console: API keys ---------------------------------------------------------------------------------


def _api_keys_context(session: Session, user: Principal, paging: PageParams) -> dict[str, Any]:
    statement = apikeys.keys_in_scope(user.scopes("identity.apikeys.manage"))
    rows, total = fetch_page(session, statement, paging)
    held = sorted({code for grant in user.grants for code in grant.permissions})
    return {
        "page": _page_of(rows, total, paging),
        "permissions": [
            (code, access_catalog.permissions[code].description)
            for code in held
            if code in access_catalog.permissions
        ],
        "form": {},
    }


@router.get("/admin/api-keys")
def api_keys_page(request: Request, user: SignedIn, session: DbSession, paging: Paging) -> Response:
    require(user, "identity.apikeys.manage")
    return _page(request, "identity/admin/api_keys.html", _api_keys_context(session, user, paging))


@router.post("/admin/api-keys", dependencies=[CsrfChecked])
def create_api_key(
    request: Request,
    user: SignedIn,
    session: DbSession,
    paging: Paging,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    org_unit_code: Annotated[str, Form(max_length=64)],
    permissions: Annotated[list[str] | None, Form()] = None,
    valid_days: Annotated[int | None, Form(ge=1, le=3650)] = None,
) -> Response:
    """Create a key and show its secret in this answer only (it is stored hashed)."""
    require(user, "identity.apikeys.manage")
    expires_at = utcnow() + timedelta(days=valid_days) if valid_days else None

    def create() -> tuple[ApiKey, str]:
        unit = orgs.get_unit_by_code(session, org_unit_code.strip())
        return apikeys.create_key(
            session,
            user,
            name=name.strip(),
            permissions=permissions or [],
            org_unit=unit,
            expires_at=expires_at,
        )

    outcome = attempt(session, create)
    if isinstance(outcome, Problem):
        context = _api_keys_context(session, user, paging)
        context.update(
            error=outcome.detail,
            form={
                "name": name,
                "org_unit_code": org_unit_code,
                "permissions": permissions or [],
                "valid_days": valid_days,
            },
        )
        return _page(request, "identity/admin/api_keys.html", context, outcome.status)
    key, secret = outcome
    context = _api_keys_context(session, user, paging)
    context.update(created=key, secret=secret)
    return _page(request, "identity/admin/api_keys.html", context, 201)


@router.post("/admin/api-keys/{key_id}/revoke", dependencies=[CsrfChecked])
def revoke_api_key(request: Request, user: SignedIn, session: DbSession, key_id: int) -> Response:
    key = apikeys.revoke_key(session, user, key_id)
    flash(request, _("API key %(name)s revoked.", name=key.name))
    return see_other("/admin/api-keys")
