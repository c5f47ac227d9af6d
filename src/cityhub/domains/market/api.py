"""Market JSON API under /api/v1/market: the public nearby search and store pages, a resident's merchant
application, claims and coupons, the operator's merchant review, a merchant's stores, batches, staff and
till keys, and the till's look-up and redemption (an API key with market.coupons.redeem); member cards: the
owner's program and rewards, residents' cards, and the till's points for purchases, rewards and refunds."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from cityhub.domains.identity import (
    CurrentPrincipal,
    Principal,
    account_id_of,
    get_organization_by_code,
    optional_principal,
    require_citywide,
    require_permission,
)
from cityhub.domains.market import schemas
from cityhub.domains.market.models import CommissionRule, Merchant
from cityhub.domains.market.service import (
    abuse,
    batches,
    coupons,
    deals,
    ledger,
    members,
    merchants,
    reports,
    stores,
    targeting,
)
from cityhub.domains.market.service.access import REVIEW
from cityhub.domains.market.settings import MarketSettings
from cityhub.kernel.db import Database, utcnow
from cityhub.kernel.errors import ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.pagination import Page, Paging, fetch_page, page_of
from cityhub.kernel.payments import payment_provider
from cityhub.kernel.ratelimit import enforce
from cityhub.kernel.settings import domain_settings
from cityhub.kernel.uploads import read_form, single_files
from cityhub.kernel.web import (
    CSV,
    AppSettings,
    DbSession,
    DbWriteSession,
    PublicRateLimited,
    attachment,
    client_address,
    get_database,
)

router = APIRouter()
Reviewer = Annotated[Principal, Depends(require_permission(REVIEW))]
# Claims and redemptions commit in the handler's own thread (see services' OneHop): under a rush every pool
# thread could otherwise wait on a batch row whose lock holder's commit is queued behind them.
OneHop = Annotated[Database, Depends(get_database)]


def market_settings() -> MarketSettings:
    return domain_settings(MarketSettings)


# -- public ------------------------------------------------------------------------------------------------


@router.get(
    "/stores/nearby",
    response_model=schemas.NearbyPageOut,
    summary="Listed stores within a radius of a point, nearest first (public)",
    dependencies=[PublicRateLimited],
)
async def nearby(
    request: Request,
    settings: AppSettings,
    lon: Annotated[float, Query(ge=-180, le=180)],
    lat: Annotated[float, Query(ge=-90, le=90)],
    radius_km: Annotated[
        float | None, Query(gt=0, description="Default CITYHUB_MARKET__NEARBY_RADIUS_KM.")
    ] = None,
    category: Annotated[schemas.Category | None, Query()] = None,
    q: Annotated[
        str | None, Query(max_length=100, description="Words in the store's or merchant's name.")
    ] = None,
    open_now: bool = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> Response:
    # Async, with the search, its session and the JSON in one thread hop (as the catalogue search does): a
    # sync route with a request session took three hops per search.
    market = market_settings()
    radius = radius_km if radius_km is not None else market.nearby_radius_km
    if radius > market.max_radius_km:
        raise ValidationProblem(
            _("Search at most %(km)s km around a point.", km=market.max_radius_km), field="radius_km"
        )
    query = stores.NearbyQuery(lon, lat, radius * 1000, category, q or None, open_now, limit, offset)
    body = await run_in_threadpool(_nearby_json, get_database(request), query, settings.timezone)
    return Response(content=body, media_type="application/json")


def _nearby_json(database: Database, query: stores.NearbyQuery, tz: str) -> bytes:
    with database.request_session(write=False) as session:  # a read: nothing to commit
        page = stores.nearby(session, query, tz)
    shaped = schemas.NearbyPageOut(
        items=page.items,
        limit=query.limit,
        offset=query.offset,
        has_more=page.has_more,
        radius_m=page.radius_m,
    )
    return shaped.model_dump_json().encode()


@router.get(
    "/stores/{store_id}",
    response_model=schemas.StorePageOut,
    summary="A store and the coupons it offers (public)",
)
def store_page(store_id: int, session: DbSession, settings: AppSettings) -> schemas.StorePageOut:
    store, merchant = stores.public_store(session, store_id)
    return schemas.StorePageOut(
        store=stores.shape(store, merchant.name, tz=settings.timezone),
        batches=batches.offered_at(session, store, merchant.name),
    )


@router.get(
    "/batches/{batch_id}",
    response_model=schemas.BatchOut,
    summary="A coupon batch (public; counted as a view)",
)
def batch_page(
    batch_id: int,
    caller: Annotated[Principal | None, Depends(optional_principal)],
    session: DbWriteSession,
    settings: AppSettings,
) -> schemas.BatchOut:
    batch, merchant_name = batches.public_batch(session, batch_id)
    viewer = caller.person_id if caller is not None else None
    coupons.record(session, coupons.Clock(utcnow(), settings.timezone), batch, "view", person_id=viewer)
    return batches.shape(session, [batch], merchant_name)[0]


# -- residents ---------------------------------------------------------------------------------------------


@router.post(
    "/merchants",
    response_model=schemas.MerchantOut,
    status_code=status.HTTP_201_CREATED,
    summary="Apply as a merchant",
)
def apply(body: schemas.MerchantIn, principal: CurrentPrincipal, session: DbSession) -> Merchant:
    return merchants.apply(session, principal, body)


@router.post(
    "/merchants/{merchant_id}/documents",
    response_model=schemas.MerchantOut,
    summary="Attach a licence scan or permit (multipart field 'file': PDF, PNG or JPEG)",
)
async def add_document(
    merchant_id: int, request: Request, principal: CurrentPrincipal, session: DbSession, settings: AppSettings
) -> Merchant:
    _fields, files = await read_form(request, max_files=1)
    upload = single_files(files).get("file")
    if upload is None:
        raise ValidationProblem(_("Attach the document as the field 'file'."), field="file")
    return merchants.add_document(
        session, principal, merchant_id, upload, settings.var_dir / "uploads" / "market"
    )


@router.get(
    "/me/merchants", response_model=list[schemas.MerchantOut], summary="My applications and merchants"
)
def my_merchants(principal: CurrentPrincipal, session: DbSession) -> list[Merchant]:
    return merchants.my_merchants(session, principal)


def claim_limits(request: Request, principal: Principal, settings: AppSettings) -> str:
    """Rate limits per person (a new account of the same real-name person is the same person) and per
    device; the device, which the claim's event keeps for the suspicious-claims report."""
    market = market_settings()
    storage = settings.rate_limits.storage_uri
    enforce(storage, market.claim_rate, "market.claim.person", str(principal.person_id or principal.actor))
    device = request.headers.get("x-device-id") or client_address(request)
    enforce(storage, market.device_claim_rate, "market.claim.device", device[:100])
    return device[:100]


@router.post(
    "/batches/{batch_id}/claim",
    response_model=schemas.CouponOut,
    status_code=status.HTTP_201_CREATED,
    summary="Claim a coupon (409 when sold out or past my limit)",
)
def claim(
    batch_id: int, request: Request, principal: CurrentPrincipal, database: OneHop, settings: AppSettings
) -> schemas.CouponOut:
    device = claim_limits(request, principal, settings)
    with database.unit_of_work() as session:
        return coupons.claim(session, principal, batch_id, settings.timezone, device)


CouponStatus = Literal["claimed", "redeemed", "expired", "voided"]


@router.get(
    "/me/coupons", response_model=list[schemas.CouponOut], summary="My coupons, soonest to expire first"
)
def my_coupons(
    principal: CurrentPrincipal,
    session: DbSession,
    coupon_status: Annotated[CouponStatus | None, Query(alias="status")] = None,
) -> list[schemas.CouponOut]:
    return coupons.my_coupons(session, principal, coupon_status)


@router.get("/me/coupons/{code}", response_model=schemas.CouponOut, summary="One of my coupons")
def my_coupon(code: str, principal: CurrentPrincipal, session: DbSession) -> schemas.CouponOut:
    return coupons.my_coupon(session, principal, code)


@router.post(
    "/me/coupons/{code}/transfer",
    response_model=schemas.CouponOut,
    summary="Give an unused coupon to another resident",
)
def transfer(
    code: str,
    body: schemas.TransferIn,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: AppSettings,
) -> schemas.CouponOut:
    return coupons.transfer(session, principal, code, body.to_username, settings.timezone)


# -- operator ----------------------------------------------------------------------------------------------


@router.get("/merchants", response_model=Page[schemas.MerchantOut], summary="Merchant applications to review")
def applications(
    principal: Reviewer,
    session: DbSession,
    paging: Paging,
    merchant_status: Annotated[
        Literal["pending", "approved", "rejected", "suspended"] | None, Query(alias="status")
    ] = None,
) -> Page[schemas.MerchantOut]:
    require_citywide(principal, REVIEW)
    rows, total = fetch_page(session, merchants.applications(merchant_status), paging)
    return page_of(rows, total, paging, schemas.MerchantOut)


@router.post(
    "/merchants/enrol",
    response_model=schemas.MerchantOut,
    status_code=status.HTTP_201_CREATED,
    summary="Enrol an existing merchant organisation (approved at once)",
)
def enrol(body: schemas.EnrolIn, principal: Reviewer, session: DbSession) -> Merchant:
    organization = get_organization_by_code(session, body.organization)
    owner = account_id_of(session, body.owner_username)
    return merchants.enrol(session, principal, organization.id, owner, body)


@router.get(
    "/suspicious-claims",
    response_model=schemas.SuspiciousOut,
    summary="Devices claiming for several people and people claiming far above the median (audited)",
)
def suspicious_claims(
    principal: Reviewer,
    session: DbWriteSession,
    days: Annotated[int, Query(ge=1, le=90)] = 7,
) -> schemas.SuspiciousOut:
    return abuse.suspicious_claims(session, principal, days, market_settings())


@router.get(
    "/merchants/{merchant_id}",
    response_model=schemas.MerchantOut,
    summary="A merchant (reviewer or applicant)",
)
def merchant(merchant_id: int, principal: CurrentPrincipal, session: DbSession) -> Merchant:
    if principal.can(REVIEW):
        return merchants.get_for_review(session, principal, merchant_id)
    return merchants.own_application(session, principal, merchant_id)


@router.post(
    "/merchants/{merchant_id}/review",
    response_model=schemas.MerchantOut,
    summary="Approve, reject or suspend",
)
def review(merchant_id: int, body: schemas.ReviewIn, principal: Reviewer, session: DbSession) -> Merchant:
    return merchants.review(session, principal, merchant_id, body)


# -- merchants ---------------------------------------------------------------------------------------------


@router.get(
    "/merchants/{merchant_id}/stores", response_model=list[schemas.StoreOut], summary="The merchant's stores"
)
def merchant_stores(
    merchant_id: int, principal: CurrentPrincipal, session: DbSession
) -> list[schemas.StoreOut]:
    return stores.merchant_stores(session, principal, merchant_id)


@router.post(
    "/merchants/{merchant_id}/stores",
    response_model=schemas.StoreOut,
    status_code=status.HTTP_201_CREATED,
    summary="Open a store",
)
def add_store(
    merchant_id: int,
    body: schemas.StoreIn,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: AppSettings,
) -> schemas.StoreOut:
    store = stores.add_store(session, principal, merchant_id, body)
    return stores.shape(store, "", tz=settings.timezone)


@router.put(
    "/merchants/{merchant_id}/stores/{store_id}", response_model=schemas.StoreOut, summary="Change a store"
)
def change_store(
    merchant_id: int,
    store_id: int,
    body: schemas.StoreIn,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: AppSettings,
) -> schemas.StoreOut:
    store = stores.change_store(session, principal, merchant_id, store_id, body)
    return stores.shape(store, "", tz=settings.timezone)


@router.get(
    "/merchants/{merchant_id}/batches",
    response_model=list[schemas.BatchOut],
    summary="The merchant's coupon batches",
)
def merchant_batches(
    merchant_id: int, principal: CurrentPrincipal, session: DbSession
) -> list[schemas.BatchOut]:
    return batches.merchant_batches(session, principal, merchant_id)


@router.post(
    "/merchants/{merchant_id}/batches",
    response_model=schemas.BatchOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create a coupon batch",
)
def create_batch(
    merchant_id: int, body: schemas.BatchIn, principal: CurrentPrincipal, session: DbSession
) -> schemas.BatchOut:
    return batches.create(session, principal, merchant_id, body)


@router.post(
    "/merchants/{merchant_id}/batches/{batch_id}/status",
    response_model=schemas.BatchOut,
    summary="Activate, pause or end a batch",
)
def batch_status(
    merchant_id: int,
    batch_id: int,
    body: schemas.BatchStatusIn,
    principal: CurrentPrincipal,
    session: DbSession,
) -> schemas.BatchOut:
    return batches.set_status(session, principal, merchant_id, batch_id, body.status)


@router.post(
    "/merchants/{merchant_id}/batches/{batch_id}/stock",
    response_model=schemas.BatchOut,
    summary="Add stock to a batch",
)
def batch_stock(
    merchant_id: int, batch_id: int, body: schemas.StockIn, principal: CurrentPrincipal, session: DbSession
) -> schemas.BatchOut:
    return batches.add_stock(session, principal, merchant_id, batch_id, body.add)


@router.get(
    "/merchants/{merchant_id}/reports",
    response_model=schemas.ReportOut,
    summary="Coupon report per day, batch or store, today included (at most 62 days; format=csv for a file)",
    responses={200: {"content": {"text/csv": {}}}},
)
def merchant_report(
    merchant_id: int,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: AppSettings,
    first: Annotated[date | None, Query(alias="from", description="First day; default 29 days ago.")] = None,
    last: Annotated[date | None, Query(alias="to", description="Last day; default today.")] = None,
    group: Annotated[reports.Grouping, Query()] = "day",
    batch_id: int | None = None,
    store_id: int | None = None,
    file_format: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> Response | schemas.ReportOut:
    today = utcnow().astimezone(ZoneInfo(settings.timezone)).date()
    last = last or today
    query = reports.ReportQuery(first or last - timedelta(days=29), last, group, batch_id, store_id)
    rows = reports.report(session, principal, merchant_id, query)
    if file_format == "csv":
        name = f"merchant-{merchant_id}-{query.group}-{query.first}-{query.last}.csv"
        return attachment(reports.to_csv(rows, query.group), CSV, name)
    return reports.shaped(merchant_id, query, rows)


@router.post(
    "/merchants/{merchant_id}/batches/{batch_id}/pushes",
    response_model=schemas.PushOut,
    status_code=status.HTTP_201_CREATED,
    summary="Offer a batch to residents of a segment who agreed to offers (counts only, never who)",
)
def push_batch(
    merchant_id: int,
    batch_id: int,
    body: schemas.PushIn,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: AppSettings,
) -> schemas.PushOut:
    return targeting.push(session, principal, merchant_id, batch_id, body, settings.timezone)


@router.get(
    "/merchants/{merchant_id}/batches/{batch_id}/pushes",
    response_model=list[schemas.PushOut],
    summary="The batch's offers so far, with how many each reached",
)
def batch_pushes(
    merchant_id: int, batch_id: int, principal: CurrentPrincipal, session: DbSession
) -> list[schemas.PushOut]:
    return targeting.pushes(session, principal, merchant_id, batch_id)


@router.get("/commission-rules", response_model=list[schemas.CommissionRuleOut], summary="Commission rules")
def commission_rules(principal: CurrentPrincipal, session: DbSession) -> list[CommissionRule]:
    return ledger.rules(session, principal)


@router.post(
    "/commission-rules",
    response_model=schemas.CommissionRuleOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a commission rule for a merchant or a category, in force from a moment on",
)
def add_commission_rule(
    body: schemas.CommissionRuleIn, principal: CurrentPrincipal, session: DbSession
) -> CommissionRule:
    return ledger.add_rule(session, principal, body)


@router.post(
    "/merchants/{merchant_id}/charges",
    status_code=status.HTTP_201_CREATED,
    summary="Charge a featured-listing fee, or record a payment received from the merchant",
)
def charge(
    merchant_id: int,
    body: schemas.ChargeIn,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: AppSettings,
) -> dict[str, int]:
    return {"transaction_id": ledger.charge(session, principal, merchant_id, body, settings.timezone)}


@router.get(
    "/merchants/{merchant_id}/statements/{month}",
    response_model=schemas.StatementOut,
    summary="The merchant's monthly statement (owners and the operator; format=csv or pdf for a file)",
    responses={200: {"content": {"text/csv": {}, "application/pdf": {}}}},
)
def monthly_statement(
    merchant_id: int,
    month: Annotated[str, Path(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")],
    principal: CurrentPrincipal,
    session: DbSession,
    settings: AppSettings,
    file_format: Annotated[Literal["json", "csv", "pdf"], Query(alias="format")] = "json",
) -> Response | schemas.StatementOut:
    found = ledger.statement(session, principal, merchant_id, month)
    if file_format == "json":
        return found
    return attachment(*ledger.statement_file(found, file_format, settings))


@router.get("/revenue/{month}", response_model=list[schemas.RevenueRow], summary="The operator's month")
def revenue(
    month: Annotated[str, Path(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")],
    principal: CurrentPrincipal,
    session: DbSession,
) -> list[schemas.RevenueRow]:
    return ledger.revenue(session, principal, month)


@router.get(
    "/merchants/{merchant_id}/staff", response_model=list[schemas.StaffOut], summary="Owners and clerks"
)
def staff(merchant_id: int, principal: CurrentPrincipal, session: DbSession) -> list[schemas.StaffOut]:
    return merchants.staff(session, principal, merchant_id)


@router.post(
    "/merchants/{merchant_id}/staff",
    response_model=schemas.StaffOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a clerk or owner",
)
def add_staff(
    merchant_id: int, body: schemas.StaffIn, principal: CurrentPrincipal, session: DbSession
) -> schemas.StaffOut:
    return merchants.add_staff(session, principal, merchant_id, body)


@router.delete(
    "/merchants/{merchant_id}/staff/{assignment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a clerk or owner",
)
def remove_staff(
    merchant_id: int, assignment_id: int, principal: CurrentPrincipal, session: DbSession
) -> Response:
    merchants.remove_staff(session, principal, merchant_id, assignment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/merchants/{merchant_id}/pos-keys", response_model=list[schemas.PosKeyOut], summary="Till keys")
def pos_keys(merchant_id: int, principal: CurrentPrincipal, session: DbSession) -> list[schemas.PosKeyOut]:
    return merchants.pos_keys(session, principal, merchant_id)


@router.post(
    "/merchants/{merchant_id}/pos-keys",
    response_model=schemas.PosKeyOut,
    status_code=status.HTTP_201_CREATED,
    summary="A till key (the secret is shown once)",
)
def issue_pos_key(
    merchant_id: int, body: schemas.PosKeyIn, principal: CurrentPrincipal, session: DbSession
) -> schemas.PosKeyOut:
    return merchants.issue_pos_key(session, principal, merchant_id, body)


@router.delete(
    "/merchants/{merchant_id}/pos-keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke a till key",
)
def revoke_pos_key(
    merchant_id: int, key_id: int, principal: CurrentPrincipal, session: DbSession
) -> Response:
    merchants.revoke_pos_key(session, principal, merchant_id, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- the till ----------------------------------------------------------------------------------------------


@router.get(
    "/merchants/{merchant_id}/coupons/{code}",
    response_model=schemas.PosCouponOut,
    summary="Look up a scanned code",
)
def look_up(
    merchant_id: int, code: str, principal: CurrentPrincipal, session: DbSession
) -> schemas.PosCouponOut:
    return coupons.look_up(session, principal, merchant_id, code)


@router.post(
    "/merchants/{merchant_id}/redemptions",
    response_model=schemas.RedemptionOut,
    status_code=status.HTTP_201_CREATED,
    summary="Redeem an order's coupons, all or none (a retry with the same client_key answers 200, replayed)",
)
def redeem(
    merchant_id: int,
    body: schemas.RedemptionIn,
    principal: CurrentPrincipal,
    database: OneHop,
    settings: AppSettings,
    response: Response,
) -> schemas.RedemptionOut:
    with database.unit_of_work() as session:
        answer = coupons.redeem(session, principal, merchant_id, body, settings.timezone)
    mark_replayed(response, answer.replayed)
    return answer


def mark_replayed(response: Response, replayed: bool) -> None:
    """A till's retry answers 200 with the first request's outcome; a first request 201."""
    if replayed:
        response.status_code = status.HTTP_200_OK


# -- group deals -------------------------------------------------------------------------------------------


@router.get(
    "/deals", response_model=list[schemas.DealOut], summary="Group deals open to join, soonest to close first"
)
def open_deals(session: DbSession) -> list[schemas.DealOut]:
    return deals.open_deals(session, utcnow())


@router.get(
    "/deals/{deal_id}", response_model=schemas.DealOut, summary="A group deal and how many joined (public)"
)
def deal(deal_id: int, session: DbSession) -> schemas.DealOut:
    return deals.public_deal(session, deal_id)


@router.post(
    "/deals/{deal_id}/join",
    response_model=schemas.DealCheckoutOut,
    status_code=status.HTTP_201_CREATED,
    summary="Join a group deal: the checkout address to pay at (409 when closed, full or joined already)",
)
def join_deal(
    deal_id: int, principal: CurrentPrincipal, session: DbSession, settings: AppSettings
) -> schemas.DealCheckoutOut:
    return deals.join(session, principal, payment_provider(settings), deal_id, utcnow())


@router.get(
    "/me/deal-joins", response_model=list[schemas.DealJoinOut], summary="My group deals and their payments"
)
def my_deal_joins(principal: CurrentPrincipal, session: DbSession) -> list[schemas.DealJoinOut]:
    return deals.my_joins(session, principal)


@router.get(
    "/merchants/{merchant_id}/deals", response_model=list[schemas.DealOut], summary="The merchant's deals"
)
def merchant_deals(
    merchant_id: int, principal: CurrentPrincipal, session: DbSession
) -> list[schemas.DealOut]:
    return deals.merchant_deals(session, principal, merchant_id)


@router.post(
    "/merchants/{merchant_id}/deals",
    response_model=schemas.DealOut,
    status_code=status.HTTP_201_CREATED,
    summary="Open a group deal (with its GROUPON batch of vouchers)",
)
def create_deal(
    merchant_id: int, body: schemas.DealIn, principal: CurrentPrincipal, session: DbSession
) -> schemas.DealOut:
    return deals.create(session, principal, merchant_id, body, utcnow())


@router.post(
    "/merchants/{merchant_id}/deals/{deal_id}/cancel",
    response_model=schemas.DealOut,
    summary="Cancel an open deal: every paid participant is refunded",
)
def cancel_deal(
    merchant_id: int, deal_id: int, principal: CurrentPrincipal, session: DbSession, settings: AppSettings
) -> schemas.DealOut:
    clock = coupons.Clock(utcnow(), settings.timezone)
    return deals.cancel(session, principal, payment_provider(settings), merchant_id, deal_id, clock)


# -- member cards ------------------------------------------------------------------------------------------


@router.get(
    "/merchants/{merchant_id}/member-program",
    response_model=schemas.ProgramOut,
    summary="A merchant's member card: points, levels and the rewards on offer (public)",
)
def member_program(merchant_id: int, session: DbSession) -> schemas.ProgramOut:
    return members.public_program(session, merchant_id)


@router.put(
    "/merchants/{merchant_id}/member-program",
    response_model=schemas.ProgramOut,
    summary="Create or change the merchant's member card (members' levels follow new thresholds)",
)
def save_member_program(
    merchant_id: int, body: schemas.ProgramIn, principal: CurrentPrincipal, session: DbSession
) -> schemas.ProgramOut:
    return members.save_program(session, principal, merchant_id, body)


@router.get(
    "/merchants/{merchant_id}/member-program/stats",
    response_model=schemas.ProgramStatsOut,
    summary="Members by level and the points issued, reversed, redeemed and held (counts, never who)",
)
def member_program_stats(
    merchant_id: int, principal: CurrentPrincipal, session: DbSession
) -> schemas.ProgramStatsOut:
    return members.program_stats(session, principal, merchant_id)


@router.get(
    "/merchants/{merchant_id}/members",
    response_model=Page[schemas.MemberRowOut],
    summary="The members, newest first, by masked card number",
)
def member_list(
    merchant_id: int, principal: CurrentPrincipal, session: DbSession, paging: Paging
) -> Page[schemas.MemberRowOut]:
    return members.members_page(session, principal, merchant_id, paging)


@router.get(
    "/merchants/{merchant_id}/rewards",
    response_model=list[schemas.RewardOut],
    summary="Every reward of the member card, withdrawn ones too",
)
def rewards(merchant_id: int, principal: CurrentPrincipal, session: DbSession) -> list[schemas.RewardOut]:
    return members.rewards(session, principal, merchant_id)


@router.post(
    "/merchants/{merchant_id}/rewards",
    response_model=schemas.RewardOut,
    status_code=status.HTTP_201_CREATED,
    summary="Offer a reward for points",
)
def add_reward(
    merchant_id: int, body: schemas.RewardIn, principal: CurrentPrincipal, session: DbSession
) -> schemas.RewardOut:
    return members.add_reward(session, principal, merchant_id, body)


@router.put(
    "/merchants/{merchant_id}/rewards/{reward_id}",
    response_model=schemas.RewardOut,
    summary="Change a reward (its stock never below what was redeemed: 409)",
)
def change_reward(
    merchant_id: int, reward_id: int, body: schemas.RewardIn, principal: CurrentPrincipal, session: DbSession
) -> schemas.RewardOut:
    return members.change_reward(session, principal, merchant_id, reward_id, body)


@router.post(
    "/merchants/{merchant_id}/membership",
    response_model=schemas.CardOut,
    status_code=status.HTTP_201_CREATED,
    summary="Join the merchant's member card (200 with the card already held)",
)
def join_member_program(
    merchant_id: int, principal: CurrentPrincipal, session: DbSession, response: Response
) -> schemas.CardOut:
    card, joined = members.join(session, principal, merchant_id)
    if not joined:
        response.status_code = status.HTTP_200_OK
    return card


@router.get("/me/memberships", response_model=list[schemas.CardOut], summary="My member cards")
def my_member_cards(principal: CurrentPrincipal, session: DbSession) -> list[schemas.CardOut]:
    return members.my_cards(session, principal)


@router.get(
    "/me/memberships/{number}",
    response_model=schemas.CardDetailOut,
    summary="One of my member cards: its QR code, latest points and the rewards on offer",
)
def my_member_card(number: str, principal: CurrentPrincipal, session: DbSession) -> schemas.CardDetailOut:
    return members.my_card(session, principal, number)


@router.post(
    "/merchants/{merchant_id}/members/lookup",
    response_model=schemas.TillCardOut,
    summary="The till finds a member by card number or citizen card QR (enrol: join them on the spot)",
)
def look_up_member(
    merchant_id: int,
    body: schemas.MemberLookupIn,
    principal: CurrentPrincipal,
    database: OneHop,
    settings: AppSettings,
) -> schemas.TillCardOut:
    with database.unit_of_work() as session:
        return members.look_up(session, principal, merchant_id, body, settings)


@router.get(
    "/merchants/{merchant_id}/members/{number}",
    response_model=schemas.TillCardOut,
    summary="The till's view of a member card by its number",
)
def till_member_card(
    merchant_id: int, number: str, principal: CurrentPrincipal, session: DbSession
) -> schemas.TillCardOut:
    return members.till_card(session, principal, merchant_id, number)


@router.post(
    "/merchants/{merchant_id}/points/purchases",
    response_model=schemas.PointsOut,
    status_code=status.HTTP_201_CREATED,
    summary="Points for a purchase (a retry with the same client_key answers 200, replayed)",
)
def record_purchase(
    merchant_id: int,
    body: schemas.PurchaseIn,
    principal: CurrentPrincipal,
    database: OneHop,
    settings: AppSettings,
    response: Response,
) -> schemas.PointsOut:
    with database.unit_of_work() as session:
        answer = members.record_purchase(session, principal, merchant_id, body, settings)
    mark_replayed(response, answer.replayed)
    return answer


@router.post(
    "/merchants/{merchant_id}/points/redemptions",
    response_model=schemas.PointsOut,
    status_code=status.HTTP_201_CREATED,
    summary="A reward for points (409 with too few points or none left; a retry answers 200, replayed)",
)
def redeem_reward(
    merchant_id: int,
    body: schemas.RewardRedemptionIn,
    principal: CurrentPrincipal,
    database: OneHop,
    settings: AppSettings,
    response: Response,
) -> schemas.PointsOut:
    with database.unit_of_work() as session:
        answer = members.redeem_reward(session, principal, merchant_id, body, settings)
    mark_replayed(response, answer.replayed)
    return answer


@router.post(
    "/merchants/{merchant_id}/points/{entry_id}/reversal",
    response_model=schemas.PointsOut,
    status_code=status.HTTP_201_CREATED,
    summary="Take back a refunded purchase's points, once (again: 200, replayed)",
)
def reverse_points(
    merchant_id: int, entry_id: int, principal: CurrentPrincipal, database: OneHop, response: Response
) -> schemas.PointsOut:
    with database.unit_of_work() as session:
        answer = members.reverse(session, principal, merchant_id, entry_id)
    mark_replayed(response, answer.replayed)
    return answer
