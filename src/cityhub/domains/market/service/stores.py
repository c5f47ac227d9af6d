"""Stores and the nearby search.

Nearby is portable: each store keeps its H3 cell (STORE_CELL_RES); a search asks the index for the stores
in the cells covering the circle (``kernel.geo.cells_within``), reading id and position from the index
alone, measures the exact distance of each with numpy, and sorts. Filters that need the row (keyword, open
now) are applied in distance order, a chunk of rows at a time, until the page is full: the answer is a page
of the nearest and whether more follow, never a count of everything (which is what costs)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import JSON, func, or_, select, text, update
from sqlalchemy.orm import Session

from cityhub.domains.identity import Principal
from cityhub.domains.market import schemas
from cityhub.domains.market.models import STORE_CELL_RES, Merchant, Store
from cityhub.domains.market.service.access import MANAGE, REDEEM, merchant_for
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import NotFound, ValidationProblem
from cityhub.kernel.geo import (
    EARTH_RADIUS_M,
    POSTGIS_POINT,
    cell_for,
    cells_by_distance,
    has_postgis_index,
)
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.jsondoc import escape_like

CHUNK = 200
POSTGIS_STORE_INDEX = "postgis_market_store_geog"  # made by migration 0020 where PostGIS is available
FIRST_CELLS = 7  # the point's cell and its ring
WEEKDAYS = schemas.WEEKDAYS


def add_store(session: Session, principal: Principal, merchant_id: int, data: schemas.StoreIn) -> Store:
    merchant = merchant_for(session, principal, merchant_id, MANAGE)
    store = Store(merchant_id=merchant.id, cell=cell_for(data.lon, data.lat, STORE_CELL_RES))
    _fill(store, data, merchant)
    session.add(store)
    session.flush()
    return store


def change_store(
    session: Session, principal: Principal, merchant_id: int, store_id: int, data: schemas.StoreIn
) -> Store:
    merchant = merchant_for(session, principal, merchant_id, MANAGE)
    store = session.get(Store, store_id)
    if store is None or store.merchant_id != merchant.id:
        raise NotFound(_("Store %(id)s does not exist.", id=store_id))
    store.cell = cell_for(data.lon, data.lat, STORE_CELL_RES)
    _fill(store, data, merchant)
    return store


def _fill(store: Store, data: schemas.StoreIn, merchant: Merchant) -> None:
    for field in ("name", "name_en", "category", "address", "phone", "lon", "lat", "opening_hours", "active"):
        setattr(store, field, getattr(data, field))
    store.listed = data.active and merchant.status == "approved"


def relist(session: Session, merchant: Merchant) -> None:
    """After a merchant's approval or suspension: its active stores are listed only while it is approved."""
    session.execute(
        update(Store)
        .where(Store.merchant_id == merchant.id)
        .values(listed=Store.active & (merchant.status == "approved"))
    )


def merchant_stores(session: Session, principal: Principal, merchant_id: int) -> list[schemas.StoreOut]:
    """Every store of the merchant, for its owners, clerks and tills (a till names its store when it
    redeems)."""
    merchant = merchant_for(session, principal, merchant_id, REDEEM)
    return [shape(store, merchant.name) for store in stores_of(session, merchant)]


def stores_of(session: Session, merchant: Merchant, active_only: bool = False) -> list[Store]:
    statement = select(Store).where(Store.merchant_id == merchant.id)
    if active_only:
        statement = statement.where(Store.active.is_(True))
    return list(session.scalars(statement.order_by(Store.id)))


def public_store(session: Session, store_id: int) -> tuple[Store, Merchant]:
    row = session.execute(
        select(Store, Merchant).join(Merchant, Merchant.id == Store.merchant_id).where(Store.id == store_id)
    ).one_or_none()
    if row is None or not row.Store.listed:
        raise NotFound(_("Store %(id)s does not exist.", id=store_id))
    return row.Store, row.Merchant


def is_open(hours: dict[str, list[list[str]]], moment: datetime, tz: str) -> bool:
    local = moment.astimezone(ZoneInfo(tz))
    now = local.strftime("%H:%M")
    return any(start <= now < end for start, end in hours.get(WEEKDAYS[local.weekday()], []))


class StoreFields(Protocol):
    """A store as ``shape`` reads it: the ORM row, or a plain result row with the same columns."""

    id: int
    merchant_id: int
    name: str
    name_en: str | None
    category: str
    address: str
    phone: str | None
    lon: float
    lat: float
    opening_hours: dict[str, list[list[str]]]
    active: bool


def shape(
    store: StoreFields, merchant_name: str, distance_m: float | None = None, tz: str = "Asia/Shanghai"
) -> schemas.StoreOut:
    return schemas.StoreOut(
        id=store.id,
        merchant_id=store.merchant_id,
        merchant_name=merchant_name,
        name=store.name,
        name_en=store.name_en,
        category=store.category,
        address=store.address,
        phone=store.phone,
        lon=store.lon,
        lat=store.lat,
        opening_hours=store.opening_hours,
        active=store.active,
        open_now=is_open(store.opening_hours, utcnow(), tz),
        distance_m=None if distance_m is None else round(distance_m, 1),
    )


@dataclass(frozen=True)
class NearbyQuery:
    lon: float
    lat: float
    radius_m: float
    category: str | None = None
    keyword: str | None = None
    open_now: bool = False
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True)
class NearbyPage:
    items: list[schemas.StoreOut]
    has_more: bool
    radius_m: float


def nearby(session: Session, query: NearbyQuery, tz: str, use_postgis: bool = True) -> NearbyPage:
    """A page of the listed stores nearest the point; with PostGIS (when its index exists and
    ``use_postgis``) from its nearest-neighbour index, else from the portable H3 cells."""
    end = query.offset + query.limit
    unfiltered = not query.keyword and not query.open_now
    # One more than the page tells whether another page follows; filters on the row need every candidate.
    wanted = end + 1 if unfiltered else None
    postgis = use_postgis and has_postgis_index(session.connection(), POSTGIS_STORE_INDEX)
    if postgis and wanted is not None:
        return _page_postgis(session, query, wanted, tz)
    if postgis:
        ids, distances = _within_postgis(session, query, wanted)
    else:
        ids, distances = _within(session, query, _cells(query), wanted)
    if unfiltered:  # the order is final: fetch just the page's rows
        page_ids, page_distances = ids[query.offset : end].tolist(), distances[query.offset : end].tolist()
        rows = _rows(session, query, page_ids)
        items = [shape(*rows[i], d, tz) for i, d in zip(page_ids, page_distances, strict=True) if i in rows]
        return NearbyPage(items, len(ids) > end, query.radius_m)
    found: list[tuple[tuple[Store, str], float]] = []
    now = utcnow()
    for chunk_ids, chunk_distances in _chunks(ids, distances, max(CHUNK, end + 1)):
        rows = _rows(session, query, chunk_ids)
        found.extend(
            (rows[store_id], distance)
            for store_id, distance in zip(chunk_ids, chunk_distances, strict=True)
            if store_id in rows and (not query.open_now or is_open(rows[store_id][0].opening_hours, now, tz))
        )
        if len(found) > end:
            break
    items = [shape(store, name, distance, tz) for (store, name), distance in found[query.offset : end]]
    return NearbyPage(items, len(found) > end, query.radius_m)


def _cells(query: NearbyQuery) -> list[tuple[str, float]]:
    try:
        return cells_by_distance(query.lon, query.lat, query.radius_m, STORE_CELL_RES)
    except ValueError as exc:
        raise ValidationProblem(str(exc), field="radius_km") from exc


def _page_postgis(session: Session, query: NearbyQuery, wanted: int, tz: str) -> NearbyPage:
    """An unfiltered page in one statement: the nearest ``wanted`` (as ``_within_postgis``) with their rows
    and merchants' names — one round trip instead of two, plain rows instead of ORM objects."""
    nearest = _nearest_postgis(query, wanted)
    statement = text(
        "SELECT s.id, s.merchant_id, s.name, s.name_en, s.category, s.address, s.phone, s.lon, s.lat, "  # noqa: S608 - constants only
        "s.opening_hours, s.active, m.name AS merchant_name, near.d "
        f"FROM ({nearest}) AS near JOIN market_store s ON s.id = near.id "
        "JOIN market_merchant m ON m.id = s.merchant_id ORDER BY near.d, near.id"
    ).columns(opening_hours=JSON)
    rows = session.connection().execute(statement, _postgis_parameters(query, wanted)).all()
    end = query.offset + query.limit
    items = [shape(row, row.merchant_name, row.d, tz) for row in rows[query.offset : end]]
    return NearbyPage(items, len(rows) > end, query.radius_m)


def _postgis_parameters(query: NearbyQuery, wanted: int | None) -> dict[str, object]:
    point = f"SRID=4326;POINT({query.lon!r} {query.lat!r})"
    return {"here": point, "radius": query.radius_m, "category": query.category, "wanted": wanted}


def _within_postgis(
    session: Session, query: NearbyQuery, wanted: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """As ``_within``, from PostGIS's GiST index."""
    statement = text(_nearest_postgis(query, wanted))
    rows = session.connection().execute(statement, _postgis_parameters(query, wanted)).all()
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty(0)
    ids, distances = zip(*rows, strict=True)
    return np.fromiter(ids, dtype=np.int64), np.fromiter(distances, dtype=float)


def _nearest_postgis(query: NearbyQuery, wanted: int | None) -> str:
    """SQL of ``(id, d)``: the listed stores within the radius by distance ``d`` then id — all of them, or
    the ``wanted`` nearest. Distances are on the portable path's sphere, so both paths agree. With
    ``wanted``, the index's nearest-neighbour order (``<->``) finds how far the wanted-th store is, and the
    stores up to there are sorted by distance and id (a tie-break the index order cannot give): two short
    index scans. Every piece is a constant of this module or kernel.geo; the values are bound."""
    here = "CAST(:here AS geography)"
    distance = f"ST_Distance({POSTGIS_POINT}, {here}, false)"
    within = f"listed AND ST_DWithin({POSTGIS_POINT}, {here}, %s, false)" + (
        " AND category = :category" if query.category else ""
    )
    if wanted is None:
        return f"SELECT id, {distance} AS d FROM market_store WHERE {within % ':radius'} ORDER BY d, id"  # noqa: S608
    nearest = (
        f"SELECT {distance} AS d FROM market_store WHERE {within % ':radius'} "  # noqa: S608
        f"ORDER BY {POSTGIS_POINT} <-> {here} LIMIT :wanted"
    )
    reach = f"(SELECT max(d) FROM ({nearest}) AS nearest) + 0.001"  # noqa: S608
    return f"SELECT id, {distance} AS d FROM market_store WHERE {within % reach} ORDER BY d, id LIMIT :wanted"  # noqa: S608


def _within(
    session: Session, query: NearbyQuery, cells: list[tuple[str, float]], wanted: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Ids of the listed stores within the radius, nearest first, and their distances in metres.

    Cells are read nearest first, in groups that double, until ``wanted`` stores lie nearer than every cell
    not read yet (None: read them all): the first page in a dense city reads the few cells around the
    point, not the thousands of stores of the whole circle."""
    ids, lons, lats = np.empty(0, dtype=np.int64), np.empty(0), np.empty(0)
    start, group = 0, FIRST_CELLS
    while start < len(cells):
        taken = cells[start:] if wanted is None else cells[start : start + group]
        start, group = start + len(taken), group * 2
        more_ids, more_lons, more_lats = _candidates(session, query, [cell for cell, _d in taken])
        ids, lons, lats = (
            np.concatenate((ids, more_ids)),
            np.concatenate((lons, more_lons)),
            np.concatenate((lats, more_lats)),
        )
        if wanted is not None and start < len(cells):
            frontier = min(cells[start][1], query.radius_m)
            if np.count_nonzero(_haversine_m(query.lon, query.lat, lons, lats) <= frontier) >= wanted:
                break
    distances = _haversine_m(query.lon, query.lat, lons, lats)
    inside = distances <= query.radius_m
    ids, distances = ids[inside], distances[inside]
    order = np.lexsort((ids, distances))  # ties broken by id, so pages never overlap
    return ids[order], distances[order]


def _candidates(
    session: Session, query: NearbyQuery, cells: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, lons, lats) of the listed stores in the cells, read from the index alone."""
    statement = select(Store.id, Store.lon, Store.lat).where(Store.cell.in_(cells), Store.listed.is_(True))
    if query.category:
        statement = statement.where(Store.category == query.category)
    # Plain tuples from the driver: numpy reading SQLAlchemy rows one attribute at a time costs more than the
    # query itself.
    rows = session.connection().execute(statement).all()
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty(0), np.empty(0)
    ids, lons, lats = zip(*rows, strict=True)
    return np.fromiter(ids, dtype=np.int64), np.fromiter(lons, dtype=float), np.fromiter(lats, dtype=float)


def _haversine_m(lon: float, lat: float, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    phi1, phi2 = np.radians(lat), np.radians(lats)
    a = np.sin((phi2 - phi1) / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(np.radians(lons - lon) / 2) ** 2
    result: np.ndarray = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a)))
    return result


def _chunks(ids: np.ndarray, distances: np.ndarray, size: int) -> Iterator[tuple[list[int], list[float]]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size].tolist(), distances[start : start + size].tolist()


def _rows(session: Session, query: NearbyQuery, ids: list[int]) -> dict[int, tuple[Store, str]]:
    """The stores among ``ids`` (with their merchant's name) that match the keyword, by id."""
    if not ids:
        return {}
    statement = (
        select(Store, Merchant.name).join(Merchant, Merchant.id == Store.merchant_id).where(Store.id.in_(ids))
    )
    if query.keyword:
        pattern = f"%{escape_like(query.keyword.lower())}%"
        statement = statement.where(
            or_(
                func.lower(Store.name).like(pattern, escape="\\"),
                func.lower(func.coalesce(Store.name_en, "")).like(pattern, escape="\\"),
                func.lower(Merchant.name).like(pattern, escape="\\"),
            )
        )
    return {store.id: (store, name) for store, name in session.execute(statement)}
