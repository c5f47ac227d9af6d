"""Market pages: the stores near a resident (a list and a Leaflet map), a store with the coupons it offers
(claimed in place with htmx, or by a plain form), my coupons with their QR codes and giving one on, and the
merchant application; the merchant's console (stores, coupon batches, staff, till keys), its coupon reports
(a chart, a table and a CSV file) and the counter's scanner page for owners and clerks; and the operator's
merchant review. Member cards: joining on a store's page, my cards with their QR codes, the owner's card
console and the counter's member till.

Claiming, redeeming and the member till commit in a unit of work of their own, like the API's (see
api.OneHop). Their routes take the page user from the session cookie alone and never open the request's
transaction, which on SQLite would hold the write lock that unit of work waits for; they answer with a
redirect (or an htmx fragment) and carry the outcome to the next page in the signed session.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import FileResponse, Response
from markupsafe import Markup
from pydantic import ValidationError
from sqlalchemy.orm import Session

from cityhub.domains.identity import (
    PageUser,
    Principal,
    SignedIn,
    get_unit,
    household_of,
    page_principal,
    require_citywide,
    units_in_scope,
    usernames_of,
)
from cityhub.domains.market import schemas
from cityhub.domains.market.api import claim_limits, market_settings
from cityhub.domains.market.models import MemberProgram, Merchant
from cityhub.domains.market.service import (
    batches,
    coupons,
    deals,
    ledger,
    members,
    merchants,
    reports,
    stores,
)
from cityhub.domains.market.service.access import MANAGE, REDEEM, REVIEW, merchant_for
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import Forbidden, NotFound, Problem, Unauthorized, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.i18n import lazy_gettext as _l
from cityhub.kernel.pagination import Page, PageParams, Paging, fetch_page
from cityhub.kernel.payments import payment_provider
from cityhub.kernel.qr import qr_svg
from cityhub.kernel.uploads import Upload, read_form, single_files, single_values
from cityhub.kernel.web import (
    CSV,
    AppSettings,
    CsrfChecked,
    DbSession,
    attachment,
    attempt,
    described,
    detail_of,
    flash,
    get_database,
    money,
    render,
    see_other,
)

router = APIRouter()
ResultT = TypeVar("ResultT")
Point = tuple[float, float]  # (lon, lat)

NEARBY_PAGE = 20
CLAIM_KEY = "market.claim"  # why the last claim was refused, for the store page
TILL_KEY = "market.till"  # the last redemption's outcome, for the scanner page
COUPON_STATUS_ORDER = ("claimed", "redeemed", "expired", "voided")

CATEGORY_LABELS = {
    "food": _l("Food and drink"),
    "grocery": _l("Groceries"),
    "pharmacy": _l("Pharmacy"),
    "beauty": _l("Beauty and hair"),
    "education": _l("Education"),
    "housekeeping": _l("Housekeeping"),
    "repair": _l("Repairs"),
    "fitness": _l("Fitness"),
    "entertainment": _l("Entertainment"),
    "other": _l("Other"),
}
KIND_LABELS = {
    "CASH": _l("Cash coupon"),
    "DISCOUNT": _l("Discount coupon"),
    "GIFT": _l("Gift coupon"),
    "GROUPON": _l("Group-buy voucher"),
    "GENERAL": _l("Coupon"),
}
COUPON_STATES = {
    "claimed": _l("Ready to use"),
    "redeemed": _l("Used"),
    "expired": _l("Expired"),
    "voided": _l("Voided"),
}
MERCHANT_STATES = {
    "pending": _l("Waiting for review"),
    "approved": _l("Approved"),
    "rejected": _l("Not approved"),
    "suspended": _l("Suspended"),
}
BATCH_STATES = {
    "draft": _l("Draft"),
    "active": _l("Being given out"),
    "paused": _l("Paused"),
    "ended": _l("Ended"),
}
# The moves a batch's buttons offer from each state (batches.MOVES decides what is allowed).
BATCH_MOVES = {
    "draft": (("active", _l("Start")), ("ended", _l("End"))),
    "active": (("paused", _l("Pause")), ("ended", _l("End"))),
    "paused": (("active", _l("Resume")), ("ended", _l("End"))),
    "ended": (),
}
WEEKDAY_LABELS = {
    "mon": _l("Monday"),
    "tue": _l("Tuesday"),
    "wed": _l("Wednesday"),
    "thu": _l("Thursday"),
    "fri": _l("Friday"),
    "sat": _l("Saturday"),
    "sun": _l("Sunday"),
}
ROLE_LABELS = {"merchant_owner": _l("Owner"), "merchant_clerk": _l("Clerk")}
# Whole sentences, not a verb slotted into one: the words for a decision differ by language and by context.
DECISION_DONE = {
    "approve": _l("%(name)s is approved."),
    "reject": _l("%(name)s is rejected."),
    "suspend": _l("%(name)s is suspended."),
}


# --- page plumbing -------------------------------------------------------------------------------------


def _distance(metres: float | None) -> str:
    if metres is None:
        return ""
    return f"{metres:.0f} m" if metres < 1000 else f"{metres / 1000:.1f} km"


def _digits(code: str) -> str:
    """A coupon code in groups of four, as it is read out at the counter."""
    return " ".join(code[start : start + 4] for start in range(0, len(code), 4))


def _page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    shared = {
        "categories": CATEGORY_LABELS,
        "kinds": KIND_LABELS,
        "coupon_states": COUPON_STATES,
        "merchant_states": MERCHANT_STATES,
        "batch_states": BATCH_STATES,
        "weekdays": WEEKDAY_LABELS,
        "money": money,
        "distance": _distance,
        "digits": _digits,
    }
    return render(request, f"market/{name}", {**shared, **context}, status_code)


def _field_errors(exc: ValidationError) -> dict[str, str]:
    """The first refusal of each field ("" for the form as a whole)."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        location = error.get("loc", ())
        errors.setdefault(str(location[0]) if location else "", str(error.get("msg", "")))
    return {field: message.removeprefix("Value error, ") for field, message in errors.items()}


PageVisitor = Annotated[Principal | None, Depends(page_principal)]


def _signed_in(request: Request, visitor: Principal | None, back: str) -> Principal:
    """The page user of a route that must not open the request's transaction (see the module docstring);
    an anonymous visitor is sent to log in and come back to ``back``."""
    if visitor is not None:
        return visitor
    login = f"/login?{urlencode({'next': back})}"
    if request.headers.get("HX-Request"):
        raise Unauthorized(slug="login-required", headers={"HX-Redirect": login})
    raise Problem(status=303, slug="login-required", headers={"Location": login})


async def _posted(request: Request) -> dict[str, list[str]]:
    fields, _files = await read_form(request, max_files=0)
    return fields


Posted = Annotated[dict[str, list[str]], Depends(_posted)]


# --- where the resident is -----------------------------------------------------------------------------


def _place_of(unit: Any) -> Point | None:
    """A unit's point, or the middle of its outline."""
    if unit.lon is not None and unit.lat is not None:
        return float(unit.lon), float(unit.lat)
    boundary = unit.boundary or {}
    coordinates = boundary.get("coordinates")
    if not coordinates:
        return None
    ring = coordinates[0] if boundary.get("type") == "Polygon" else coordinates[0][0]
    points = ring[:-1] if len(ring) > 1 and ring[0] == ring[-1] else ring
    if not points:
        return None
    return sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)


def _home_units(session: Session, user: Principal | None) -> Iterator[Any]:
    """The resident's household and the units above it, nearest first."""
    if user is None or user.person_id is None:
        return
    found = household_of(session, user.person_id)
    unit = found[0] if found else None
    for _step in range(8):
        if unit is None:
            return
        yield unit
        unit = get_unit(session, unit.parent_id) if unit.parent_id is not None else None


def _city_centre(session: Session) -> Point | None:
    """The root unit's point, else the first community's or building's that has one."""
    every = units_in_scope(["/"])
    order = (every.selected_columns["depth"], every.selected_columns["id"])
    for wanted in ({"parent_id": None}, {"kind": "community"}, {"kind": "building"}):
        for unit in session.scalars(every.filter_by(**wanted).order_by(*order).limit(20)):
            place = _place_of(unit)
            if place is not None:
                return place
    return None


def _centre(session: Session, user: Principal | None) -> Point | None:
    for unit in _home_units(session, user):
        place = _place_of(unit)
        if place is not None:
            return place
    return _city_centre(session)


def _communities(session: Session) -> list[Any]:
    return sorted(session.scalars(units_in_scope(["/"]).filter_by(kind="community")), key=lambda u: u.code)


# --- nearby stores and a store -------------------------------------------------------------------------


@router.get("/market")
def nearby_page(
    request: Request,
    user: PageUser,
    session: DbSession,
    settings: AppSettings,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    category: Annotated[str, Query(max_length=32)] = "",
    q: Annotated[str, Query(max_length=100)] = "",
    open_now: bool = False,
    radius_km: Annotated[str, Query(max_length=10)] = "",
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> Response:
    """Listed stores around a point, nearest first, and a map of them. The point is the one asked for, else
    the resident's home, else the city's centre."""
    market = market_settings()
    given = (lon, lat) if lon is not None and lat is not None else None
    centre = given or _centre(session, user)
    chosen = category if category in CATEGORY_LABELS else ""
    problem: str | None = None
    try:
        radius = float(radius_km) if radius_km.strip() else market.nearby_radius_km
    except ValueError:
        radius, problem = market.nearby_radius_km, _("Give the distance in kilometres, e.g. 3.")
    if not 0 < radius <= market.max_radius_km:
        radius = market.nearby_radius_km
        problem = _("Search at most %(km)s km around a point.", km=market.max_radius_km)
    found: list[schemas.StoreOut] = []
    has_more = False
    if centre is not None:
        query = stores.NearbyQuery(
            centre[0],
            centre[1],
            radius * 1000,
            chosen or None,
            q.strip() or None,
            open_now,
            NEARBY_PAGE,
            offset,
        )
        try:
            page = stores.nearby(session, query, settings.timezone)
            found, has_more = page.items, page.has_more
        except Problem as refused:
            problem = detail_of(refused)
    markers = [
        {
            "name": store.name,
            "merchant": store.merchant_name,
            "lon": store.lon,
            "lat": store.lat,
            "url": f"/market/stores/{store.id}",
            "open": store.open_now,
        }
        for store in found
    ]
    context = {
        "stores": found,
        "has_more": has_more,
        "offset": offset,
        "size": NEARBY_PAGE,
        "centre": centre,
        "given": given,
        "radius": radius,
        "radius_text": f"{radius:g}",
        "category": chosen,
        "q": q,
        "open_now": open_now,
        "problem": problem,
        "map_data": json.dumps(
            {"centre": centre, "radius_m": radius * 1000, "stores": markers}, ensure_ascii=False
        ),
    }
    return _page(request, "nearby.html", context)


def _opening_hours(hours: dict[str, list[list[str]]]) -> list[tuple[str, str]]:
    return [
        (day, ", ".join(f"{start}–{end}" for start, end in hours.get(day, []))) for day in schemas.WEEKDAYS
    ]


@router.get("/market/stores/{store_id}")
def store_page(
    request: Request, user: PageUser, session: DbSession, settings: AppSettings, store_id: int
) -> Response:
    """A store: where and when it is open, and the coupons one can claim for it now."""
    store, merchant = stores.public_store(session, store_id)
    shaped = stores.shape(store, merchant.name, tz=settings.timezone)
    marker = {
        "name": shaped.name,
        "merchant": shaped.merchant_name,
        "lon": shaped.lon,
        "lat": shaped.lat,
        "url": "",
        "open": shaped.open_now,
    }
    context = {
        "store": shaped,
        "hours": _opening_hours(shaped.opening_hours),
        "batches": batches.offered_at(session, store, merchant.name),
        "refusal": request.session.pop(CLAIM_KEY, None),
        "map_data": json.dumps(
            {"centre": [shaped.lon, shaped.lat], "stores": [marker], "zoom": 16}, ensure_ascii=False
        ),
        **_member_offer(session, user, merchant.id),
    }
    return _page(request, "store.html", context)


@router.post("/market/stores/{store_id}/batches/{batch_id}/claim", dependencies=[CsrfChecked])
def claim(
    request: Request, visitor: PageVisitor, settings: AppSettings, store_id: int, batch_id: int
) -> Response:
    """Claim a coupon. With htmx the batch's entry is swapped in place (with the code's link, or why not);
    a plain form goes on to the coupon, or back to the store with the refusal."""
    back = f"/market/stores/{store_id}"
    user = _signed_in(request, visitor, back)
    database = get_database(request)
    claimed: schemas.CouponOut | None = None
    refusal: str | None = None
    try:
        device = claim_limits(request, user, settings)
        with database.unit_of_work() as session:
            claimed = coupons.claim(session, user, batch_id, settings.timezone, device)
    except Problem as problem:
        refusal = detail_of(problem)
    if request.headers.get("HX-Request"):
        with database.reading() as session:
            store, _merchant = stores.public_store(session, store_id)
            batch, merchant_name = batches.public_batch(session, batch_id)
            shaped = batches.shape(session, [batch], merchant_name)[0]
        context = {"batch": shaped, "store": store, "claimed": claimed, "claim_refusal": refusal}
        return _page(request, "_batch.html", context)
    if claimed is None:
        request.session[CLAIM_KEY] = {"batch": batch_id, "text": refusal}
        return see_other(f"{back}#batch-{batch_id}")
    flash(request, _("Coupon claimed. Show this code at the counter."))
    return see_other(f"/market/me/coupons/{claimed.code}")


# --- my coupons ----------------------------------------------------------------------------------------


@router.get("/market/batches/{batch_id}")
def batch_link(batch_id: int, session: DbSession) -> Response:
    """Where an offer's link leads: a store where the batch can be claimed and used."""
    return see_other(f"/market/stores/{batches.store_offering(session, batch_id)}")


@router.get("/market/me/coupons")
def my_coupons_page(request: Request, user: SignedIn, session: DbSession) -> Response:
    mine = coupons.my_coupons(session, user, None)
    groups = [(status, [c for c in mine if c.status == status]) for status in COUPON_STATUS_ORDER]
    return _page(request, "coupons.html", {"groups": groups, "total": len(mine)})


CouponCode = Annotated[str, Path(max_length=32)]


def _coupon_page(
    request: Request,
    session: Session,
    user: Principal,
    code: str,
    problem: Problem | None = None,
    to_username: str = "",
) -> Response:
    coupon = coupons.my_coupon(session, user, code)
    context = {
        "coupon": coupon,
        "qr_svg": Markup(qr_svg(coupon.code)),  # noqa: S704 - segno's SVG of our own digits
        "code_digits": _digits(coupon.code),
        "problem": detail_of(problem) if problem else None,
        "to_username": to_username,
    }
    return _page(request, "coupon.html", context, problem.status if problem else 200)


@router.get("/market/me/coupons/{code}")
def coupon_page(request: Request, user: SignedIn, session: DbSession, code: CouponCode) -> Response:
    """One coupon: its QR code and digits for the counter, its validity, and giving it on."""
    return _coupon_page(request, session, user, code)


@router.post("/market/me/coupons/{code}/transfer", dependencies=[CsrfChecked])
def transfer(
    request: Request,
    user: SignedIn,
    session: DbSession,
    settings: AppSettings,
    code: CouponCode,
    to_username: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    receiver = to_username.strip()
    outcome = attempt(session, lambda: coupons.transfer(session, user, code, receiver, settings.timezone))
    if isinstance(outcome, Problem):
        return _coupon_page(request, session, user, code, outcome, receiver)
    flash(request, _("The coupon now belongs to %(name)s.", name=receiver))
    return see_other("/market/me/coupons")


# --- applying as a merchant ----------------------------------------------------------------------------

APPLY_FIELDS = ("name", "name_en", "category", "licence_number", "contact_phone", "description", "community")
OPTIONAL_APPLY_FIELDS = ("name_en", "description")


def _apply_page(
    request: Request,
    session: Session,
    user: Principal,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    if "community" not in values:
        home = next((u.code for u in _home_units(session, user) if u.kind == "community"), "")
        values = {**values, "community": home}
    context = {"values": values, "errors": errors, "communities": _communities(session)}
    return _page(request, "apply.html", context, status_code)


@router.get("/market/apply")
def apply_page(request: Request, user: SignedIn, session: DbSession) -> Response:
    return _apply_page(request, session, user, {}, {})


@router.post("/market/apply", dependencies=[CsrfChecked])
def apply(request: Request, user: SignedIn, session: DbSession, fields: Posted) -> Response:
    values = {name: single_values(fields).get(name, "").strip() for name in APPLY_FIELDS}
    given = {k: v for k, v in values.items() if v or k not in OPTIONAL_APPLY_FIELDS}
    try:
        data = schemas.MerchantIn.model_validate(given)
    except ValidationError as exc:
        return _apply_page(request, session, user, values, _field_errors(exc), 422)
    outcome = attempt(session, lambda: merchants.apply(session, user, data))
    if isinstance(outcome, Problem):
        field = str(outcome.extensions.get("field", ""))
        return _apply_page(request, session, user, values, {field: detail_of(outcome)}, outcome.status)
    flash(request, _("Thank you: your application is waiting for review."))
    return see_other(f"/market/merchant#merchant-{outcome.id}")


# --- the merchant's console ----------------------------------------------------------------------------


def _console(
    request: Request,
    session: Session,
    user: Principal,
    *,
    failed: tuple[int, str, str] | None = None,
    form: dict[str, Any] | None = None,
    secret: tuple[int, schemas.PosKeyOut] | None = None,
    status_code: int = 200,
) -> Response:
    """Every merchant I applied for or work for; the stores, batches, staff and till keys of those I run.
    ``failed``: (merchant id, form, why) of a refused form, shown next to it with ``form``'s values."""
    managed, redeeming = user.organizations(MANAGE), user.organizations(REDEEM)
    desks = []
    for merchant in merchants.my_merchants(session, user):
        trading = merchant.status == "approved" and merchant.organization_id is not None
        desk: dict[str, Any] = {
            "merchant": merchant,
            "manage": trading and merchant.organization_id in managed,
            "redeem": trading and merchant.organization_id in redeeming,
            "applicant": merchant.applicant_account_id == user.account_id,
        }
        if desk["manage"]:
            desk |= {
                "stores": stores.merchant_stores(session, user, merchant.id),
                "batches": batches.merchant_batches(session, user, merchant.id),
                "staff": merchants.staff(session, user, merchant.id),
                "keys": merchants.pos_keys(session, user, merchant.id),
            }
        desks.append(desk)
    context = {
        "desks": desks,
        "failed": failed,
        "form": form or {},
        "secret": secret,
        "moves": BATCH_MOVES,
        "roles": ROLE_LABELS,
    }
    return _page(request, "console.html", context, status_code)


def _console_step(
    request: Request,
    session: Session,
    user: Principal,
    merchant_id: int,
    form_name: str,
    action: Callable[[], object],
    form: dict[str, Any] | None = None,
) -> Response:
    """Do one console step in a savepoint; back to the console, or the console with the refusal."""
    outcome = attempt(session, action)
    if isinstance(outcome, Problem):
        if isinstance(outcome, Forbidden | NotFound):
            raise outcome
        failed = (merchant_id, form_name, detail_of(outcome))
        return _console(request, session, user, failed=failed, form=form, status_code=outcome.status)
    return see_other(f"/market/merchant#{form_name}-{merchant_id}")


@router.get("/market/merchant")
def console_page(request: Request, user: SignedIn, session: DbSession) -> Response:
    return _console(request, session, user)


def _opening_hours_of(text: str, days: list[str]) -> dict[str, list[list[str]]]:
    """ "09:00-21:00" (or "09:00-12:00, 14:00-21:00") on the chosen weekdays."""
    spans = []
    for part in text.replace("，", ",").split(","):
        if not part.strip():
            continue
        start, separator, end = part.replace("–", "-").replace("~", "-").partition("-")
        if not separator:
            raise ValidationProblem(_("Give the hours as 09:00-21:00."), field="hours")
        spans.append([start.strip().zfill(5), end.strip().zfill(5)])
    chosen = [day for day in schemas.WEEKDAYS if day in days] if days else list(schemas.WEEKDAYS)
    return dict.fromkeys(chosen, spans) if spans else {}


def _number(values: dict[str, str], field: str) -> float | None:
    text = values.get(field, "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError as exc:
        raise ValidationProblem(_("%(field)s: give a number.", field=field), field=field) from exc


def _whole(values: dict[str, str], field: str) -> int | None:
    text = values.get(field, "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise ValidationProblem(_("%(field)s: give a whole number.", field=field), field=field)
    return int(text)


def _cents(text: str, field: str) -> int:
    """Yuan as typed ("12.5", "¥12.50") in cents; nothing is 0."""
    cleaned = text.strip().lstrip("¥￥").replace(",", "")
    if not cleaned:
        return 0
    try:
        amount = Decimal(cleaned)
    except InvalidOperation as exc:
        raise ValidationProblem(_("Give the amount in yuan, e.g. 12.50."), field=field) from exc
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise ValidationProblem(_("Give the amount in yuan, e.g. 12.50."), field=field)
    return int(amount * 100)


def _day(values: dict[str, str], field: str) -> date | None:
    text = values.get(field, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValidationProblem(_("%(field)s: give a date.", field=field), field=field) from exc


def _start_of(day: date | None, zone: ZoneInfo) -> datetime | None:
    return datetime.combine(day, time(0), zone) if day else None


def _end_of(day: date | None, zone: ZoneInfo) -> datetime | None:
    """The end of a day (inclusive) in the platform's zone: the next midnight."""
    return datetime.combine(day + timedelta(days=1), time(0), zone) if day else None


def _store_in(values: dict[str, str], days: list[str]) -> schemas.StoreIn:
    return schemas.StoreIn.model_validate(
        {
            "name": values.get("name", "").strip(),
            "name_en": values.get("name_en", "").strip() or None,
            "category": values.get("category", ""),
            "address": values.get("address", "").strip(),
            "phone": values.get("phone", "").strip() or None,
            "lon": _number(values, "lon"),
            "lat": _number(values, "lat"),
            "opening_hours": _opening_hours_of(values.get("hours", ""), days),
        }
    )


def _batch_in(values: dict[str, str], store_ids: list[str], tz: str) -> schemas.BatchIn:
    zone = ZoneInfo(tz)
    data: dict[str, Any] = {
        "kind": values.get("kind", ""),
        "title": values.get("title", "").strip(),
        "description": values.get("description", "").strip(),
        "least_cost_cents": _cents(values.get("least_cost", ""), "least_cost"),
        "reduce_cost_cents": _cents(values.get("reduce_cost", ""), "reduce_cost"),
        "face_value_cents": _cents(values.get("face_value", ""), "face_value"),
        "discount_percent": _whole(values, "discount_percent"),
        "gift": values.get("gift", "").strip() or None,
        "deal_detail": values.get("deal_detail", "").strip() or None,
        "claim_until": _end_of(_day(values, "claim_until"), zone),
        "stock": _whole(values, "stock"),
        "per_person_limit": _whole(values, "per_person_limit") or 1,
        "per_day_limit": _whole(values, "per_day_limit"),
        "transferable": "transferable" in values,
        "stackable": "stackable" in values,
        "store_ids": [int(store_id) for store_id in store_ids if store_id.isdigit()],
        "status": "draft" if "draft" in values else "active",
    }
    if values.get("valid_from", "").strip() or values.get("valid_until", "").strip():
        data["valid_from"] = _start_of(_day(values, "valid_from"), zone)
        data["valid_until"] = _end_of(_day(values, "valid_until"), zone)
    else:
        data["valid_days"] = _whole(values, "valid_days")
    return schemas.BatchIn.model_validate(data)


@router.post("/market/merchant/{merchant_id}/stores", dependencies=[CsrfChecked])
def add_store(
    request: Request, user: SignedIn, session: DbSession, merchant_id: int, fields: Posted
) -> Response:
    values = single_values(fields)
    days = fields.get("days", [])

    def add() -> object:
        return stores.add_store(session, user, merchant_id, _store_in(values, days))

    form = {**values, "days": days}
    return _console_step(request, session, user, merchant_id, "stores", add, form)


@router.post("/market/merchant/{merchant_id}/batches", dependencies=[CsrfChecked])
def create_batch(
    request: Request,
    user: SignedIn,
    session: DbSession,
    settings: AppSettings,
    merchant_id: int,
    fields: Posted,
) -> Response:
    values = single_values(fields)
    store_ids = fields.get("store_ids", [])

    def create() -> object:
        return batches.create(session, user, merchant_id, _batch_in(values, store_ids, settings.timezone))

    form = {**values, "store_ids": store_ids}
    return _console_step(request, session, user, merchant_id, "batches", create, form)


@router.post("/market/merchant/{merchant_id}/batches/{batch_id}/status", dependencies=[CsrfChecked])
def batch_status(
    request: Request,
    user: SignedIn,
    session: DbSession,
    merchant_id: int,
    batch_id: int,
    status: Annotated[str, Form(pattern="^(active|paused|ended)$")],
) -> Response:
    def move() -> object:
        return batches.set_status(session, user, merchant_id, batch_id, status)

    return _console_step(request, session, user, merchant_id, "batches", move)


@router.post("/market/merchant/{merchant_id}/staff", dependencies=[CsrfChecked])
def add_staff(
    request: Request,
    user: SignedIn,
    session: DbSession,
    merchant_id: int,
    username: Annotated[str, Form(max_length=64)] = "",
    role: Annotated[str, Form(max_length=20)] = "merchant_clerk",
) -> Response:
    form = {"username": username.strip(), "role": role}

    def add() -> object:
        return merchants.add_staff(session, user, merchant_id, schemas.StaffIn.model_validate(form))

    return _console_step(request, session, user, merchant_id, "staff", add, form)


@router.post("/market/merchant/{merchant_id}/staff/{assignment_id}/remove", dependencies=[CsrfChecked])
def remove_staff(
    request: Request, user: SignedIn, session: DbSession, merchant_id: int, assignment_id: int
) -> Response:
    def remove() -> object:
        merchants.remove_staff(session, user, merchant_id, assignment_id)
        return None

    return _console_step(request, session, user, merchant_id, "staff", remove)


@router.post("/market/merchant/{merchant_id}/pos-keys", dependencies=[CsrfChecked])
def issue_key(
    request: Request,
    user: SignedIn,
    session: DbSession,
    merchant_id: int,
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Issue a till key and show its secret in this answer only (it is stored hashed)."""
    form = {"key_name": name.strip()}
    outcome = attempt(
        session,
        lambda: merchants.issue_pos_key(session, user, merchant_id, schemas.PosKeyIn(name=name.strip())),
    )
    if isinstance(outcome, Problem):
        if isinstance(outcome, Forbidden | NotFound):
            raise outcome
        failed = (merchant_id, "keys", detail_of(outcome))
        return _console(request, session, user, failed=failed, form=form, status_code=outcome.status)
    return _console(request, session, user, secret=(merchant_id, outcome))


@router.post("/market/merchant/{merchant_id}/pos-keys/{key_id}/revoke", dependencies=[CsrfChecked])
def revoke_key(
    request: Request, user: SignedIn, session: DbSession, merchant_id: int, key_id: int
) -> Response:
    def revoke() -> object:
        merchants.revoke_pos_key(session, user, merchant_id, key_id)
        return None

    return _console_step(request, session, user, merchant_id, "keys", revoke)


async def _posted_file(request: Request) -> tuple[dict[str, list[str]], dict[str, list[Upload]]]:
    return await read_form(request, max_files=1)


@router.post("/market/merchant/{merchant_id}/documents", dependencies=[CsrfChecked])
def add_document(
    request: Request,
    user: SignedIn,
    session: DbSession,
    settings: AppSettings,
    merchant_id: int,
    posted: Annotated[tuple[dict[str, list[str]], dict[str, list[Upload]]], Depends(_posted_file)],
) -> Response:
    """Attach a licence scan or permit to an application waiting for review."""
    upload = single_files(posted[1]).get("file")
    folder = settings.var_dir / "uploads" / "market"

    def attach() -> object:
        if upload is None:
            raise ValidationProblem(_("Choose a PDF, PNG or JPEG file."), field="file")
        return merchants.add_document(session, user, merchant_id, upload, folder)

    return _console_step(request, session, user, merchant_id, "documents", attach)


# --- the counter: look up and redeem -------------------------------------------------------------------


@router.get("/market/merchant/{merchant_id}/scanner")
def scanner_page(
    request: Request,
    user: SignedIn,
    session: DbSession,
    merchant_id: int,
    code: Annotated[str, Query(max_length=40)] = "",
    store_id: Annotated[int | None, Query()] = None,
    amount: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """Type in (or scan) a resident's code, see whether it can be used, and redeem it for an order."""
    merchant = merchant_for(session, user, merchant_id, REDEEM)
    found: schemas.PosCouponOut | None = None
    refusal: str | None = None
    wanted = code.replace(" ", "").strip()
    if wanted:
        try:
            found = coupons.look_up(session, user, merchant_id, wanted)
        except Problem as problem:
            if isinstance(problem, Forbidden):
                raise
            refusal = detail_of(problem)
    result = request.session.pop(TILL_KEY, None)
    context = {
        "merchant": merchant,
        "stores": stores.stores_of(session, merchant, active_only=True),
        "store_id": store_id,
        "code": wanted,
        "amount": amount,
        "found": found,
        "refusal": refusal,
        "result": result if result and result.get("merchant") == merchant_id else None,
        "client_key": secrets.token_hex(12),
    }
    return _page(request, "scanner.html", context)


def _at_the_till(
    request: Request, key: str, merchant_id: int, step: Callable[[Session], dict[str, Any]]
) -> dict[str, Any]:
    """Run one step of a till in a unit of work of its own (see the module docstring) and keep its outcome
    for the next page under ``key``: what ``step`` returned, or why it was refused."""
    result: dict[str, Any] = {"merchant": merchant_id}
    try:
        with get_database(request).unit_of_work() as session:
            result |= {"ok": True, **step(session)}
    except ValidationError as exc:
        result |= {"ok": False, "text": described(exc)}
    except Problem as problem:
        if isinstance(problem, Forbidden):
            raise
        result |= {"ok": False, "text": detail_of(problem)}
    request.session[key] = result
    return result


@router.post("/market/merchant/{merchant_id}/scanner", dependencies=[CsrfChecked])
def redeem(
    request: Request,
    visitor: PageVisitor,
    settings: AppSettings,
    merchant_id: int,
    code: Annotated[str, Form(max_length=40)] = "",
    store_id: Annotated[int, Form()] = 0,
    amount: Annotated[str, Form(max_length=20)] = "",
    client_key: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Redeem one code for an order. The form's client key makes a second submit (a double tap, a reload)
    answer the first redemption again instead of redeeming twice."""
    back = f"/market/merchant/{merchant_id}/scanner"
    clerk = _signed_in(request, visitor, back)

    def redeem_code(session: Session) -> dict[str, Any]:
        data = schemas.RedemptionIn(
            codes=[code.replace(" ", "")],
            store_id=store_id,
            amount_cents=_cents(amount, "amount"),
            client_key=client_key,
        )
        answer = coupons.redeem(session, clerk, merchant_id, data, settings.timezone)
        return {
            "replayed": answer.replayed,
            "total": money(answer.total_value_cents),
            "coupons": [
                {"code": _digits(c.code), "title": c.title, "value": money(c.value_cents)}
                for c in answer.coupons
            ],
        }

    result = _at_the_till(request, TILL_KEY, merchant_id, redeem_code)
    again: dict[str, str | int] = {"store_id": store_id}
    if not result["ok"]:
        again |= {"code": code, "amount": amount}
    return see_other(f"{back}?{urlencode(again)}")


# --- the merchant's reports ----------------------------------------------------------------------------

REPORT_GROUPS = {
    "day": _l("Per day"),
    "batch": _l("Per coupon batch"),
    "store": _l("Per store"),
}
REPORT_KEYS = {"day": _l("Day"), "batch": _l("Coupon batch"), "store": _l("Store")}
REPORT_KINDS = {
    "view": _l("Views"),
    "claim": _l("Claims"),
    "redeem": _l("Redemptions"),
    "expire": _l("Expiries"),
    "transfer": _l("Transfers"),
}
# The series the chart draws: per day the funnel's lines, per batch or store bars of what was taken up.
CHART_KINDS = {"day": ("view", "claim", "redeem"), "batch": ("claim", "redeem"), "store": ("claim", "redeem")}
ReportText = Annotated[str, Query(max_length=20)]


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _report_query(
    settings: AppSettings, first: str, last: str, group: str, batch_id: str
) -> reports.ReportQuery:
    """The report asked for in the page's terms (as the API's defaults: the 30 days up to today in the
    platform's zone); a date that is not one is a ValidationProblem, an unknown grouping is per day."""
    today = utcnow().astimezone(ZoneInfo(settings.timezone)).date()
    given = {"from": first, "to": last}
    until = _day(given, "to") or today
    grouping: reports.Grouping = "batch" if group == "batch" else "store" if group == "store" else "day"
    chosen = int(batch_id) if batch_id.strip().isdigit() else None
    return reports.ReportQuery(_day(given, "from") or until - timedelta(days=29), until, grouping, chosen)


def _chart_data(query: reports.ReportQuery, rows: list[reports.ReportRow]) -> str:
    """The chart's figures for market-report.js, as JSON safe inside a <script> element."""
    data = {
        "group": query.group,
        "labels": [row.label for row in rows],
        "series": [
            {"kind": kind, "name": str(REPORT_KINDS[kind]), "data": [row.counts[kind] for row in rows]}
            for kind in CHART_KINDS[query.group]
        ],
    }
    return _script_json(data)


def _script_json(data: object) -> str:
    """JSON safe inside a <script> element (for the page's chart script)."""
    text = json.dumps(data, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@router.get("/market/merchant/{merchant_id}/reports")
def report_page(
    request: Request,
    user: SignedIn,
    session: DbSession,
    settings: AppSettings,
    merchant_id: int,
    first: Annotated[str, Query(alias="from", max_length=20)] = "",
    last: Annotated[str, Query(alias="to", max_length=20)] = "",
    group: ReportText = "day",
    batch_id: ReportText = "",
) -> Response:
    """The shop's coupon report for owners: views, claims, redemptions, expiries and transfers per day,
    batch or store over at most 62 days (today included), as a chart, a table and a CSV file."""
    merchant = merchant_for(session, user, merchant_id, MANAGE)
    form = {"from": first, "to": last, "group": group, "batch_id": batch_id}
    problem: str | None = None
    rows: list[reports.ReportRow] = []
    query: reports.ReportQuery | None = None
    try:
        query = _report_query(settings, first, last, group, batch_id)
        form |= {"from": query.first.isoformat(), "to": query.last.isoformat(), "group": query.group}
        rows = reports.report(session, user, merchant_id, query)
    except ValidationProblem as refused:
        problem = detail_of(refused)
    totals = {kind: sum(row.counts[kind] for row in rows) for kind in reports.KINDS}
    context = {
        "merchant": merchant,
        "batches": batches.merchant_batches(session, user, merchant_id),
        "form": form,
        "problem": problem,
        "query": query,
        "rows": rows,
        "totals": totals,
        "total_value": sum(row.redeemed_value_cents for row in rows),
        "groups": REPORT_GROUPS,
        "key_labels": REPORT_KEYS,
        "report_kinds": REPORT_KINDS,
        "percent": _percent,
        "max_days": reports.MAX_DAYS,
        "csv_url": f"/market/merchant/{merchant_id}/reports.csv?{urlencode(form)}",
        "chart_data": _chart_data(query, rows) if query is not None and problem is None else None,
    }
    return _page(request, "report.html", context, 422 if problem else 200)


@router.get("/market/merchant/{merchant_id}/reports.csv")
def report_csv(
    user: SignedIn,
    session: DbSession,
    settings: AppSettings,
    merchant_id: int,
    first: Annotated[str, Query(alias="from", max_length=20)] = "",
    last: Annotated[str, Query(alias="to", max_length=20)] = "",
    group: ReportText = "day",
    batch_id: ReportText = "",
) -> Response:
    """The same report as a CSV file (UTF-8 with a BOM, for spreadsheet programs)."""
    merchant_for(session, user, merchant_id, MANAGE)  # who may read it before whether the range is good
    query = _report_query(settings, first, last, group, batch_id)
    rows = reports.report(session, user, merchant_id, query)
    name = f"merchant-{merchant_id}-{query.group}-{query.first}-{query.last}.csv"
    return attachment(reports.to_csv(rows, query.group), CSV, name)


# --- the operator's review -----------------------------------------------------------------------------

REVIEW_FILTERS = ("pending", "approved", "rejected", "suspended", "all")


def _review_page(
    request: Request,
    session: Session,
    paging: Any,
    status: str,
    failed: tuple[int, str] | None = None,
    status_code: int = 200,
) -> Response:
    chosen = status if status in REVIEW_FILTERS else "pending"
    rows, total = fetch_page(session, merchants.applications(None if chosen == "all" else chosen), paging)
    homes = {unit_id: get_unit(session, unit_id) for unit_id in {m.home_unit_id for m in rows}}
    context = {
        "page": Page(items=rows, total=total, limit=paging.limit, offset=paging.offset),
        "status": chosen,
        "filters": REVIEW_FILTERS,
        "homes": homes,
        "applicants": usernames_of(session, [m.applicant_account_id for m in rows]),
        "failed": failed,
    }
    return _page(request, "review.html", context, status_code)


@router.get("/console/market/merchants")
def review_page(
    request: Request,
    user: SignedIn,
    session: DbSession,
    paging: Paging,
    status: Annotated[str, Query(max_length=12)] = "pending",
) -> Response:
    """Merchant applications by status, with their documents; approve, reject or suspend."""
    require_citywide(user, REVIEW)
    return _review_page(request, session, paging, status)


@router.post("/console/market/merchants/{merchant_id}/review", dependencies=[CsrfChecked])
def review(
    request: Request,
    user: SignedIn,
    session: DbSession,
    paging: Paging,
    merchant_id: int,
    decision: Annotated[str, Form(max_length=10)],
    reason: Annotated[str, Form(max_length=1000)] = "",
    status: Annotated[str, Form(max_length=12)] = "pending",
) -> Response:
    require_citywide(user, REVIEW)

    def decide() -> Merchant:
        given = schemas.ReviewIn.model_validate({"decision": decision, "reason": reason.strip() or None})
        return merchants.review(session, user, merchant_id, given)

    outcome = attempt(session, decide)
    if isinstance(outcome, Problem):
        if isinstance(outcome, Forbidden | NotFound):
            raise outcome
        shown = merchants.get_for_review(session, user, merchant_id).status  # the list it is in now
        return _review_page(
            request, session, paging, shown, (merchant_id, detail_of(outcome)), outcome.status
        )
    flash(
        request,
        str(DECISION_DONE[decision]) % {"name": outcome.name},
    )
    return see_other(f"/console/market/merchants?{urlencode({'status': status})}")


@router.get("/console/market/merchants/{merchant_id}/documents/{sha256}")
def review_document(
    user: SignedIn,
    session: DbSession,
    settings: AppSettings,
    merchant_id: int,
    sha256: Annotated[str, Path(pattern="^[0-9a-f]{64}$")],
) -> Response:
    require_citywide(user, REVIEW)
    merchant = merchants.get_for_review(session, user, merchant_id)
    document = next((d for d in merchant.documents if d.get("sha256") == sha256), None)
    path = settings.var_dir / "uploads" / "market" / sha256
    if document is None or not path.is_file():
        raise NotFound()
    return FileResponse(
        path,
        media_type=str(document.get("content_type", "application/octet-stream")),
        filename=str(document.get("name", sha256)),
        headers={"Cache-Control": "private, no-store"},
    )


# --- money: the operator's revenue and the merchants' statements ------------------------------------------

Month = Annotated[str, Query(pattern=r"^(\d{4}-(0[1-9]|1[0-2]))?$")]
MonthInPath = Annotated[str, Path(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
TREND_MONTHS = 12
TREND_KINDS = ("commission", "listing_fee", "settlement")


def _this_month(settings: AppSettings) -> str:
    return ledger.month_of(utcnow(), settings.timezone)


def _revenue_page(
    request: Request,
    session: Session,
    user: Principal,
    month: str,
    failed: str | None = None,
    status_code: int = 200,
) -> Response:
    rows = ledger.revenue(session, user, month)
    months = ledger.months_up_to(month, TREND_MONTHS)
    trend = ledger.revenue_trend(session, user, months)
    chart = {
        "group": "month",
        "labels": months,
        "series": [
            {
                "kind": kind,
                "name": str(ledger.KIND_LABELS[kind]),
                "data": [trend[m][kind] / 100 for m in months],
            }
            for kind in TREND_KINDS
        ],
    }
    rules = ledger.rules(session, user)
    totals = {
        field: sum(getattr(row, field) for row in rows)
        for field in ("commission_cents", "listing_fee_cents", "paid_cents", "owed_cents")
    }
    context = {
        "month": month,
        "rows": rows,
        "totals": totals,
        "rules": rules,
        "merchant_names": merchants.names_of(
            session, [rule.merchant_id for rule in rules if rule.merchant_id]
        ),
        "chart_data": _script_json(chart),
        "failed": failed,
    }
    return _page(request, "revenue.html", context, status_code)


@router.get("/console/market/revenue")
def revenue_page(
    request: Request, user: SignedIn, session: DbSession, settings: AppSettings, month: Month = ""
) -> Response:
    """The operator's month: commissions, listing fees and payments per merchant, what each owes, a
    twelve-month trend, the commission rules in force, and forms to add a rule or book a fee/payment."""
    require_citywide(user, ledger.REVENUE)
    return _revenue_page(request, session, user, month or _this_month(settings))


@router.post("/console/market/revenue/rules", dependencies=[CsrfChecked])
def add_commission_rule(
    request: Request, user: SignedIn, session: DbSession, settings: AppSettings, fields: Posted
) -> Response:
    require_citywide(user, ledger.REVENUE)
    values = single_values(fields)

    def add_rule() -> object:
        code = values.get("merchant", "").strip()
        rate = _cents(values.get("rate_percent", ""), "rate_percent")  # hundredths of a percent: basis points
        return ledger.add_rule(
            session,
            user,
            schemas.CommissionRuleIn.model_validate(
                {
                    "merchant_id": merchants.by_code(session, code).id if code else None,
                    "category": None if code else values.get("category") or None,
                    "rate_bp": rate,
                    "fixed_cents": _cents(values.get("fixed", ""), "fixed"),
                }
            ),
        )

    outcome = attempt(session, add_rule)
    if isinstance(outcome, Problem):
        return _revenue_page(
            request, session, user, _this_month(settings), detail_of(outcome), outcome.status
        )
    flash(request, _("The commission rule is in force from now on."))
    return see_other("/console/market/revenue")


@router.post("/console/market/revenue/charges", dependencies=[CsrfChecked])
def book_charge(
    request: Request, user: SignedIn, session: DbSession, settings: AppSettings, fields: Posted
) -> Response:
    """Charge a featured-listing fee or record a merchant's payment (a bank transfer reference)."""
    require_citywide(user, ledger.REVENUE)
    values = single_values(fields)

    def book() -> int:
        merchant = merchants.by_code(session, values.get("merchant", "").strip())
        given = schemas.ChargeIn.model_validate(
            {
                "kind": values.get("kind", ""),
                "amount_cents": _cents(values.get("amount", ""), "amount"),
                "reference": values.get("reference", "").strip(),
                "memo": values.get("memo", "").strip(),
            }
        )
        return ledger.charge(session, user, merchant.id, given, settings.timezone)

    outcome = attempt(session, book)
    if isinstance(outcome, Problem):
        return _revenue_page(
            request, session, user, _this_month(settings), detail_of(outcome), outcome.status
        )
    flash(request, _("Booked."))
    return see_other("/console/market/revenue")


@router.get("/market/merchant/{merchant_id}/statements")
def statements_page(
    request: Request,
    user: SignedIn,
    session: DbSession,
    settings: AppSettings,
    merchant_id: int,
    month: Month = "",
) -> Response:
    """A merchant's monthly settlement statement (its owners, or the operator's revenue staff): the
    opening balance, each commission, fee and payment, what is owed; CSV and PDF files."""
    chosen = month or _this_month(settings)
    found = ledger.statement(session, user, merchant_id, chosen)
    context = {"statement": found, "months": ledger.months_up_to(_this_month(settings), TREND_MONTHS)[::-1]}
    context["kind_labels"] = ledger.KIND_LABELS
    return _page(request, "statements.html", context)


@router.get("/market/merchant/{merchant_id}/statements/{month}.{file_format}")
def statement_file(
    user: SignedIn,
    session: DbSession,
    settings: AppSettings,
    merchant_id: int,
    month: MonthInPath,
    file_format: Annotated[str, Path(pattern="^(csv|pdf)$")],
) -> Response:
    found = ledger.statement(session, user, merchant_id, month)
    return attachment(*ledger.statement_file(found, file_format, settings))


# --- member cards --------------------------------------------------------------------------------------

MEMBER_TILL_KEY = "market.member_till"  # the last step of the member till, for its page
POINTS_KINDS = {"earn": _l("Purchase"), "redeem": _l("Reward"), "reverse": _l("Refund")}
CardNumber = Annotated[str, Path(max_length=40)]


def _member_offer(session: Session, user: Principal | None, merchant_id: int) -> dict[str, Any]:
    """The merchant's member card on its store's page, and the visitor's card of it."""
    program, membership = members.card_at(session, merchant_id, user.person_id if user else None)
    return {"member_program": program, "membership": membership}


@router.post("/market/stores/{store_id}/join", dependencies=[CsrfChecked])
def join_member_card(request: Request, user: SignedIn, session: DbSession, store_id: int) -> Response:
    """Join the store's member card. With htmx the card's panel is swapped in place (with the refusal, if
    any); a plain form goes on to the new card."""
    store, merchant = stores.public_store(session, store_id)
    outcome = attempt(session, lambda: members.join(session, user, merchant.id))
    if request.headers.get("HX-Request"):
        refusal = detail_of(outcome) if isinstance(outcome, Problem) else None
        context = {"store": store, "join_refusal": refusal, **_member_offer(session, user, merchant.id)}
        return _page(request, "member_join.html", context)
    if isinstance(outcome, Problem):
        raise outcome
    flash(request, _("Welcome: this is your member card. Show it at the counter."))
    return see_other(f"/market/me/members/{outcome[0].number}")


@router.get("/market/me/members")
def my_member_cards_page(request: Request, user: SignedIn, session: DbSession) -> Response:
    return _page(request, "members.html", {"cards": members.my_cards(session, user)})


@router.get("/market/me/members/{number}")
def member_card_page(request: Request, user: SignedIn, session: DbSession, number: CardNumber) -> Response:
    """One member card: its QR code and digits for the till, the level, points, rewards and history."""
    found = members.my_card(session, user, number)
    context = {
        "found": found,
        "qr_svg": Markup(found.qr_svg),  # noqa: S704 - segno's SVG of our own digits
        "points_kinds": POINTS_KINDS,
    }
    return _page(request, "member.html", context)


# The member card's console: the program, its rewards, counts of members and points, masked members.


def _levels_of(text: str) -> list[dict[str, Any]]:
    """Levels as the form takes them, one a line: "银卡, 1000, 5, Silver" (name, lifetime points that reach
    it, then optionally the % taken off and an English name)."""
    levels = []
    for line in text.replace("，", ",").splitlines():
        if not line.strip():
            continue
        name, points, discount, name_en = ([part.strip() for part in line.split(",")] + ["", "", ""])[:4]
        discount = discount.rstrip("%").strip()
        if not points.isdigit() or (discount and not discount.isdigit()):
            raise ValidationProblem(
                _("Write each level as: name, lifetime points, percent off (for example 银卡, 1000, 5)."),
                field="levels",
            )
        levels.append(
            {
                "name": name,
                "min_points": int(points),
                "discount_percent": int(discount) if discount else None,
                "name_en": name_en or None,
            }
        )
    return levels


def _levels_text(levels: list[dict[str, Any]]) -> str:
    lines = []
    for level in levels:
        parts = [level["name"], str(level["min_points"]), str(level.get("discount_percent") or "")]
        if level.get("name_en"):
            parts.append(level["name_en"])
        lines.append(", ".join(parts).rstrip(", "))
    return "\n".join(lines)


def _program_form(merchant: Merchant, program: MemberProgram | None) -> dict[str, Any]:
    """The program form's values: the card as it is, or a first suggestion."""
    if program is None:
        return {"title": _("%(name)s member card", name=merchant.name), "points_per_yuan": "1", "levels": ""}
    return {
        "title": program.title,
        "points_per_yuan": str(program.points_per_yuan),
        "levels": _levels_text(program.levels),
        "accepts_citizen_card": program.accepts_citizen_card,
        "active": program.active,
    }


def _member_desk(
    request: Request,
    session: Session,
    user: Principal,
    merchant_id: int,
    paging: PageParams,
    failed: tuple[str, str] | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    """``failed``: (form, why) of a refused form, shown next to it with ``form``'s values."""
    merchant = merchant_for(session, user, merchant_id, MANAGE)
    program = members.program_of(session, merchant.id)
    context: dict[str, Any] = {
        "merchant": merchant,
        "program": program,
        "failed": failed,
        "form": form if failed and failed[0] == "program" else _program_form(merchant, program),
        "reward_form": form if failed and failed[0] == "new-reward" else {},
    }
    if program is not None:
        context |= {
            "rewards": members.rewards(session, user, merchant_id),
            "stats": members.program_stats(session, user, merchant_id),
            "members": members.members_page(session, user, merchant_id, paging),
        }
    return _page(request, "member_console.html", context, status_code)


def _member_desk_step(
    request: Request,
    session: Session,
    user: Principal,
    merchant_id: int,
    form_name: str,
    action: Callable[[], object],
    form: dict[str, Any],
    done: str,
) -> Response:
    """Do one step of the member card's console in a savepoint: back to the console, or the console with
    the refusal next to the form."""
    outcome = attempt(session, action)
    if isinstance(outcome, Problem):
        if isinstance(outcome, Forbidden | NotFound):
            raise outcome
        failed = (form_name, detail_of(outcome))
        return _member_desk(request, session, user, merchant_id, PageParams(), failed, form, outcome.status)
    flash(request, done)
    return see_other(f"/market/merchant/{merchant_id}/members#{form_name}")


@router.get("/market/merchant/{merchant_id}/members")
def member_desk_page(
    request: Request, user: SignedIn, session: DbSession, paging: Paging, merchant_id: int
) -> Response:
    """The owner's member card: its terms and levels, rewards, counts of members and points, and the
    members by masked card number (never a name)."""
    return _member_desk(request, session, user, merchant_id, paging)


@router.post("/market/merchant/{merchant_id}/members/program", dependencies=[CsrfChecked])
def save_member_program(
    request: Request, user: SignedIn, session: DbSession, merchant_id: int, fields: Posted
) -> Response:
    values = single_values(fields)

    def save() -> object:
        data = {
            "title": values.get("title", "").strip(),
            "points_per_yuan": _whole(values, "points_per_yuan"),
            "levels": _levels_of(values.get("levels", "")),
            "accepts_citizen_card": "accepts_citizen_card" in values,
            "active": "active" in values,
        }
        return members.save_program(session, user, merchant_id, schemas.ProgramIn.model_validate(data))

    form = {**values, "accepts_citizen_card": "accepts_citizen_card" in values, "active": "active" in values}
    done = _("The member card is saved.")
    return _member_desk_step(request, session, user, merchant_id, "program", save, form, done)


def _reward_in(values: dict[str, str]) -> schemas.RewardIn:
    return schemas.RewardIn.model_validate(
        {
            "title": values.get("title", "").strip(),
            "description": values.get("description", "").strip(),
            "points_cost": _whole(values, "points_cost"),
            "stock": _whole(values, "stock"),
            "active": "active" in values,
        }
    )


@router.post("/market/merchant/{merchant_id}/members/rewards", dependencies=[CsrfChecked])
def add_reward(
    request: Request, user: SignedIn, session: DbSession, merchant_id: int, fields: Posted
) -> Response:
    values = single_values(fields)
    done = _("The reward is offered.")

    def add() -> object:
        return members.add_reward(session, user, merchant_id, _reward_in(values))

    return _member_desk_step(request, session, user, merchant_id, "new-reward", add, values, done)


@router.post("/market/merchant/{merchant_id}/members/rewards/{reward_id}", dependencies=[CsrfChecked])
def change_reward(
    request: Request, user: SignedIn, session: DbSession, merchant_id: int, reward_id: int, fields: Posted
) -> Response:
    values = single_values(fields)
    done = _("The reward is saved.")

    def change() -> object:
        return members.change_reward(session, user, merchant_id, reward_id, _reward_in(values))

    return _member_desk_step(request, session, user, merchant_id, "rewards", change, values, done)


# The member till: find a member by card number or citizen card, record a purchase, give a reward, refund.


def _member_till_url(merchant_id: int, number: str | None = None, store_id: int | None = None) -> str:
    wanted = {"number": number, "store_id": store_id}
    query = urlencode({name: value for name, value in wanted.items() if value})
    return f"/market/merchant/{merchant_id}/members/till" + (f"?{query}" if query else "")


def _member_ref(identifier: str) -> dict[str, str]:
    """What the till's one field holds: a citizen card code (a signed token, with dots) or a card number."""
    scanned = identifier.strip()
    return {"citizen_card": scanned} if "." in scanned else {"card_number": scanned}


def _points_text(answer: schemas.PointsOut) -> str:
    if answer.replayed:
        return _("This was recorded already; nothing was counted twice.")
    entry, balance = answer.entry, answer.member.points
    if entry.kind == "earn":
        return _(
            "%(points)s points earned; the card holds %(balance)s.", points=entry.points, balance=balance
        )
    if entry.kind == "redeem":
        return _(
            "%(reward)s given for %(points)s points; %(balance)s left.",
            reward=entry.reward_title or "",
            points=-entry.points,
            balance=balance,
        )
    return _("%(points)s points taken back; %(balance)s left.", points=-entry.points, balance=balance)


@router.get("/market/merchant/{merchant_id}/members/till")
def member_till_page(
    request: Request,
    user: SignedIn,
    session: DbSession,
    merchant_id: int,
    number: Annotated[str, Query(max_length=40)] = "",
    store_id: Annotated[int | None, Query()] = None,
) -> Response:
    """The counter's member till: scan a member card or a citizen card, then record the purchase, give a
    reward, or take back a refunded purchase's points."""
    merchant = merchant_for(session, user, merchant_id, REDEEM)
    program = members.program_of(session, merchant.id)
    found: schemas.TillCardOut | None = None
    refusal: str | None = None
    if program is not None and number.strip():
        try:
            found = members.till_card(session, user, merchant_id, number)
        except NotFound as problem:
            refusal = detail_of(problem)
    result = request.session.pop(MEMBER_TILL_KEY, None)
    context = {
        "merchant": merchant,
        "program": program,
        "manage": merchant.organization_id in user.organizations(MANAGE),
        "stores": stores.stores_of(session, merchant, active_only=True),
        "store_id": store_id,
        "found": found,
        "refusal": refusal,
        "result": result if result and result.get("merchant") == merchant_id else None,
        "purchase_key": secrets.token_hex(12),
        "reward_key": secrets.token_hex(12),
        "points_kinds": POINTS_KINDS,
    }
    return _page(request, "member_till.html", context)


TillNumber = Annotated[str, Form(max_length=40)]
TillStore = Annotated[int | None, Form()]
TillKey = Annotated[str, Form(max_length=64)]


@router.post("/market/merchant/{merchant_id}/members/till/lookup", dependencies=[CsrfChecked])
def till_look_up(
    request: Request,
    visitor: PageVisitor,
    settings: AppSettings,
    merchant_id: int,
    identifier: Annotated[str, Form(max_length=2000)] = "",
    enrol: Annotated[bool, Form()] = False,
    store_id: TillStore = None,
) -> Response:
    """Find the member by what was scanned; with "enrol", a citizen card's holder joins on the spot."""
    clerk = _signed_in(request, visitor, _member_till_url(merchant_id))

    def find(session: Session) -> dict[str, Any]:
        data = schemas.MemberLookupIn.model_validate({**_member_ref(identifier), "enrol": enrol})
        found = members.look_up(session, clerk, merchant_id, data, settings)
        joined = _("A new member: the card is on the resident's phone.") if found.member.enrolled else ""
        return {"number": found.member.number, "text": joined}

    result = _at_the_till(request, MEMBER_TILL_KEY, merchant_id, find)
    return see_other(_member_till_url(merchant_id, result.get("number"), store_id))


@router.post("/market/merchant/{merchant_id}/members/till/purchase", dependencies=[CsrfChecked])
def till_purchase(
    request: Request,
    visitor: PageVisitor,
    settings: AppSettings,
    merchant_id: int,
    number: TillNumber = "",
    amount: Annotated[str, Form(max_length=20)] = "",
    store_id: TillStore = None,
    client_key: TillKey = "",
) -> Response:
    """Points for the order. The form's client key makes a second submit answer the first again."""
    clerk = _signed_in(request, visitor, _member_till_url(merchant_id, number))

    def earn(session: Session) -> dict[str, Any]:
        data = schemas.PurchaseIn(
            card_number=number,
            amount_cents=_cents(amount, "amount"),
            store_id=store_id,
            client_key=client_key,
        )
        return {"text": _points_text(members.record_purchase(session, clerk, merchant_id, data, settings))}

    _at_the_till(request, MEMBER_TILL_KEY, merchant_id, earn)
    return see_other(_member_till_url(merchant_id, number, store_id))


@router.post("/market/merchant/{merchant_id}/members/till/reward", dependencies=[CsrfChecked])
def till_reward(
    request: Request,
    visitor: PageVisitor,
    settings: AppSettings,
    merchant_id: int,
    number: TillNumber = "",
    reward_id: Annotated[int, Form()] = 0,
    store_id: TillStore = None,
    client_key: TillKey = "",
) -> Response:
    """Give a reward for the member's points."""
    clerk = _signed_in(request, visitor, _member_till_url(merchant_id, number))

    def pay(session: Session) -> dict[str, Any]:
        data = schemas.RewardRedemptionIn(
            card_number=number, reward_id=reward_id, store_id=store_id, client_key=client_key
        )
        return {"text": _points_text(members.redeem_reward(session, clerk, merchant_id, data, settings))}

    _at_the_till(request, MEMBER_TILL_KEY, merchant_id, pay)
    return see_other(_member_till_url(merchant_id, number, store_id))


@router.post("/market/merchant/{merchant_id}/members/till/reversal", dependencies=[CsrfChecked])
def till_reversal(
    request: Request,
    visitor: PageVisitor,
    merchant_id: int,
    number: TillNumber = "",
    entry_id: Annotated[int, Form()] = 0,
    store_id: TillStore = None,
) -> Response:
    """Take back the points of a refunded purchase (once)."""
    clerk = _signed_in(request, visitor, _member_till_url(merchant_id, number))

    def take_back(session: Session) -> dict[str, Any]:
        return {"text": _points_text(members.reverse(session, clerk, merchant_id, entry_id))}

    _at_the_till(request, MEMBER_TILL_KEY, merchant_id, take_back)
    return see_other(_member_till_url(merchant_id, number, store_id))


# --- group deals ---------------------------------------------------------------------------------------

DEAL_STATES = {
    "open": _l("Open to join"),
    "succeeded": _l("On: vouchers issued"),
    "failed": _l("Did not happen"),
    "cancelled": _l("Cancelled"),
}
JOIN_STATES = {
    "pending": _l("Waiting for your payment"),
    "paid": _l("Paid: waiting for the deadline"),
    "issued": _l("Voucher issued"),
    "refunding": _l("Being refunded"),
    "refunded": _l("Refunded"),
    "failed": _l("Payment declined: try again"),
}
DEAL_OPENED = _l("The deal %(title)s is open.")
DEAL_CANCELLED = _l("%(title)s is cancelled; everyone who paid is being refunded.")


def _deal_page_of(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    return _page(
        request, name, {"deal_states": DEAL_STATES, "join_states": JOIN_STATES, **context}, status_code
    )


def _my_deal_joins(
    session: Session, user: Principal | None, deal_id: int | None = None
) -> list[schemas.DealJoinOut]:
    """The visitor's joins; none for a visitor who is not a signed-in resident."""
    if user is None or user.person_id is None:
        return []
    return deals.my_joins(session, user, deal_id)


@router.get("/market/deals")
def deals_page(request: Request, user: PageUser, session: DbSession) -> Response:
    """Group deals open to join, the soonest to close first, and the visitor's own."""
    context = {"deals": deals.open_deals(session, utcnow()), "mine": _my_deal_joins(session, user)}
    return _deal_page_of(request, "deals.html", context)


def _deal_page(
    request: Request, session: Session, user: Principal | None, deal_id: int, refused: Problem | None = None
) -> Response:
    mine = _my_deal_joins(session, user, deal_id)
    context = {
        "deal": deals.public_deal(session, deal_id),
        "mine": mine[0] if mine else None,
        "refusal": detail_of(refused) if refused else None,
    }
    return _deal_page_of(request, "deal.html", context, refused.status if refused else 200)


@router.get("/market/deals/{deal_id}")
def deal_page(request: Request, user: PageUser, session: DbSession, deal_id: int) -> Response:
    """A deal: what it buys, how many joined towards its minimum, its deadline, and joining it."""
    return _deal_page(request, session, user, deal_id)


@router.get("/market/deals/{deal_id}/progress")
def deal_progress(request: Request, session: DbSession, deal_id: int) -> Response:
    """How many joined, for htmx to refresh on the deal's page."""
    context = {"deal": deals.public_deal(session, deal_id), "poll": True}
    return _deal_page_of(request, "deal_progress.html", context)


@router.post("/market/deals/{deal_id}/join", dependencies=[CsrfChecked])
def join_deal(
    request: Request, user: SignedIn, session: DbSession, settings: AppSettings, deal_id: int
) -> Response:
    """Join and go on to the payment provider's checkout, which comes back to the deal; or the deal's page
    with the refusal."""
    outcome = attempt(
        session, lambda: deals.join(session, user, payment_provider(settings), deal_id, utcnow())
    )
    if isinstance(outcome, Problem):
        return _deal_page(request, session, user, deal_id, outcome)
    return see_other(outcome.checkout_url)


# The merchant's deals: how many joined each, cancelling an open one, opening a new one.


def _deal_console(
    request: Request,
    session: Session,
    user: Principal,
    merchant_id: int,
    form: dict[str, Any] | None = None,
    problem: Problem | None = None,
) -> Response:
    """``form``: the values of a refused new deal, shown again; ``problem``: why a step was refused."""
    merchant = merchant_for(session, user, merchant_id, MANAGE)
    context = {
        "merchant": merchant,
        "deals": deals.merchant_deals(session, user, merchant_id),
        "stores": stores.stores_of(session, merchant, active_only=True),
        "form": form or {},
        "problem": detail_of(problem) if problem else None,
    }
    return _deal_page_of(request, "deal_console.html", context, problem.status if problem else 200)


@router.get("/market/merchant/{merchant_id}/deals")
def deal_console_page(request: Request, user: SignedIn, session: DbSession, merchant_id: int) -> Response:
    return _deal_console(request, session, user, merchant_id)


def _deal_step(
    request: Request,
    session: Session,
    user: Principal,
    merchant_id: int,
    action: Callable[[], schemas.DealOut],
    done: Any,
    form: dict[str, Any] | None = None,
) -> Response:
    """One step on the merchant's deals in a savepoint: back to the deals saying ``done``, or the deals
    with the refusal."""
    outcome = attempt(session, action)
    if isinstance(outcome, Problem):
        if isinstance(outcome, Forbidden | NotFound):
            raise outcome
        return _deal_console(request, session, user, merchant_id, form, outcome)
    flash(request, str(done) % {"title": outcome.title})
    return see_other(f"/market/merchant/{merchant_id}/deals#deal-{outcome.id}")


def _local_moment(values: dict[str, str], field: str, zone: ZoneInfo) -> datetime | None:
    """A datetime-local field ("2026-12-01T20:00") as a moment in the platform's zone."""
    text = values.get(field, "").strip()
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=zone)
    except ValueError as exc:
        raise ValidationProblem(_("%(field)s: give a date and time.", field=field), field=field) from exc


def _deal_in(values: dict[str, str], store_ids: list[str], tz: str) -> schemas.DealIn:
    return schemas.DealIn.model_validate(
        {
            "title": values.get("title", "").strip(),
            "description": values.get("description", "").strip(),
            "deal_detail": values.get("deal_detail", "").strip(),
            "price_cents": _cents(values.get("price", ""), "price"),
            "original_price_cents": _cents(values.get("original_price", ""), "original_price") or None,
            "min_participants": _whole(values, "min_participants"),
            "max_participants": _whole(values, "max_participants"),
            "deadline": _local_moment(values, "deadline", ZoneInfo(tz)),
            "valid_days": _whole(values, "valid_days") or 30,
            "store_ids": [int(store_id) for store_id in store_ids if store_id.isdigit()],
        }
    )


@router.post("/market/merchant/{merchant_id}/deals", dependencies=[CsrfChecked])
def create_deal(
    request: Request,
    user: SignedIn,
    session: DbSession,
    settings: AppSettings,
    merchant_id: int,
    fields: Posted,
) -> Response:
    values = single_values(fields)
    store_ids = fields.get("store_ids", [])

    def create() -> schemas.DealOut:
        data = _deal_in(values, store_ids, settings.timezone)
        return deals.create(session, user, merchant_id, data, utcnow())

    form = {**values, "store_ids": store_ids}
    return _deal_step(request, session, user, merchant_id, create, DEAL_OPENED, form)


@router.post("/market/merchant/{merchant_id}/deals/{deal_id}/cancel", dependencies=[CsrfChecked])
def cancel_deal(
    request: Request,
    user: SignedIn,
    session: DbSession,
    settings: AppSettings,
    merchant_id: int,
    deal_id: int,
) -> Response:
    def cancel() -> schemas.DealOut:
        clock = coupons.Clock(utcnow(), settings.timezone)
        return deals.cancel(session, user, payment_provider(settings), merchant_id, deal_id, clock)

    return _deal_step(request, session, user, merchant_id, cancel, DEAL_CANCELLED)
