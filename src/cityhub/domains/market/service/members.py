"""Member cards and points: a merchant's program (points per yuan, levels reached by lifetime points, rewards
bought with points), residents' cards, and the till's purchases, rewards and refunds.

Points never go negative and a reward never passes its stock, however many tills work at once: a reward is
paid by a conditional update of the membership (``points >= cost``) and one of the reward
(``redeemed < stock``) in one transaction, and any refusal rolls both back. Every change of a balance
writes a ``PointsEntry`` with the balance after it. The till's ``client_key`` is unique per program: the
membership row is locked before the key is looked for, so a retry that arrives while the first attempt runs
waits for it, finds its entry and answers it again (``replayed``) instead of counting twice. A refund
reverses an earning once: the reversal's key is derived from the earning (``reversal:<id>``).

The till knows a member by the card's number or, where the program accepts it, by the citizen card QR
(identity checks it online) and may enrol the card's holder on the spot. Merchants see card numbers (masked
in lists), levels and points, never who holds a card.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, SQLColumnExpression, case, func, null, or_, select, update
from sqlalchemy.orm import Session

from cityhub.domains.identity import Principal, card_holder
from cityhub.domains.market import schemas
from cityhub.domains.market.models import MemberProgram, Membership, Merchant, PointsEntry, Reward
from cityhub.domains.market.service.access import MANAGE, REDEEM, merchant_for, person_of, till_store
from cityhub.kernel import audit
from cityhub.kernel.db import upsert_into, utcnow
from cityhub.kernel.errors import Conflict, NotFound
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.pagination import Page, PageParams, fetch_page
from cityhub.kernel.qr import qr_svg
from cityhub.kernel.settings import Settings

# 10^16 numbers: a card number cannot be guessed, and only the merchant's own till looks one up.
CARD_DIGITS = 16
HISTORY = 50  # points entries shown with a card
Level = dict[str, Any]  # a LevelIn as stored in MemberProgram.levels, by min_points


# -- the merchant's program ----------------------------------------------------------------------------


def program_of(session: Session, merchant_id: int) -> MemberProgram | None:
    return session.scalar(select(MemberProgram).where(MemberProgram.merchant_id == merchant_id))


def _program(session: Session, merchant: Merchant) -> MemberProgram:
    program = program_of(session, merchant.id)
    if program is None:
        raise NotFound(_("%(name)s has no member card.", name=merchant.name), slug="no-member-card")
    return program


def _require_open(program: MemberProgram) -> None:
    if not program.active:
        raise Conflict(_("This member card is paused."), slug="program-paused")


def save_program(
    session: Session, principal: Principal, merchant_id: int, data: schemas.ProgramIn
) -> schemas.ProgramOut:
    """Create the merchant's member card or change it. Members' levels follow new thresholds at once."""
    merchant = merchant_for(session, principal, merchant_id, MANAGE)
    program = program_of(session, merchant.id)
    created = program is None
    if program is None:
        program = MemberProgram(merchant_id=merchant.id)
        session.add(program)
    program.title = data.title
    program.points_per_yuan = data.points_per_yuan
    program.levels = [level.model_dump() for level in data.levels]
    program.accepts_citizen_card = data.accepts_citizen_card
    program.active = data.active
    session.flush()
    session.execute(
        update(Membership)
        .where(Membership.program_id == program.id)
        .values(level=_level_reached(program.levels, Membership.lifetime_points))
        .execution_options(synchronize_session=False)
    )
    audit.record(
        session,
        actor=principal.actor,
        action="market.member_program.created" if created else "market.member_program.changed",
        object_type="merchant",
        object_id=str(merchant.id),
        details=data.model_dump(mode="json"),
    )
    return _shape_program(session, merchant, program)


def _level_reached(levels: list[Level], lifetime: SQLColumnExpression[int]) -> ColumnElement[Any]:
    """The name of the highest level ``lifetime`` points reach, in SQL: the statement that adds points sets
    the level from the very sum it writes."""
    ladder = [(lifetime >= level["min_points"], level["name"]) for level in reversed(levels)]
    return case(*ladder, else_=null()) if ladder else null()


def _level_at(levels: list[Level], lifetime: int) -> Level | None:
    """The same rule in Python, for a card that is being made."""
    return next((level for level in reversed(levels) if lifetime >= level["min_points"]), None)


def public_program(session: Session, merchant_id: int) -> schemas.ProgramOut:
    """A trading merchant's open member card and the rewards it offers (404 for anything else)."""
    merchant, program = _open_program(session, merchant_id)
    return _shape_program(session, merchant, program)


def _open_program(session: Session, merchant_id: int) -> tuple[Merchant, MemberProgram]:
    row = session.execute(
        select(Merchant, MemberProgram)
        .join(MemberProgram, MemberProgram.merchant_id == Merchant.id)
        .where(Merchant.id == merchant_id)
    ).one_or_none()
    if row is None or row.Merchant.status != "approved" or not row.MemberProgram.active:
        raise NotFound(_("This merchant has no member card."), slug="no-member-card")
    return row.Merchant, row.MemberProgram


def card_at(
    session: Session, merchant_id: int, person_id: int | None
) -> tuple[MemberProgram | None, Membership | None]:
    """The merchant's open member card, if any, and the person's card of it (for a store's page)."""
    program = program_of(session, merchant_id)
    if program is None or not program.active:
        return None, None
    if person_id is None:
        return program, None
    return program, _membership_of(session, program, person_id)


def _shape_program(session: Session, merchant: Merchant, program: MemberProgram) -> schemas.ProgramOut:
    return schemas.ProgramOut(
        merchant_id=merchant.id,
        merchant_name=merchant.name,
        title=program.title,
        points_per_yuan=program.points_per_yuan,
        levels=[schemas.LevelOut.model_validate(level) for level in program.levels],
        accepts_citizen_card=program.accepts_citizen_card,
        active=program.active,
        rewards=_rewards(session, program, offered_only=True),
    )


def program_stats(session: Session, principal: Principal, merchant_id: int) -> schemas.ProgramStatsOut:
    """Counts of members by level and the points issued, reversed, redeemed and held: never who."""
    merchant = merchant_for(session, principal, merchant_id, MANAGE)
    program = _program(session, merchant)
    by_level = {
        level: (members, held)
        for level, members, held in session.execute(
            select(Membership.level, func.count(), func.coalesce(func.sum(Membership.points), 0))
            .where(Membership.program_id == program.id)
            .group_by(Membership.level)
        )
    }
    per_kind = {
        kind: (int(points), count)
        for kind, points, count in session.execute(
            select(PointsEntry.kind, func.coalesce(func.sum(PointsEntry.points), 0), func.count())
            .where(PointsEntry.program_id == program.id)
            .group_by(PointsEntry.kind)
        )
    }
    rank = {name: place for place, name in enumerate([None, *(level["name"] for level in program.levels)])}
    return schemas.ProgramStatsOut(
        members=sum(members for members, _held in by_level.values()),
        by_level=[
            schemas.LevelCount(level=name, members=members)
            for name, (members, _held) in sorted(
                by_level.items(), key=lambda item: rank.get(item[0], len(rank))
            )
        ],
        points_issued=per_kind.get("earn", (0, 0))[0],
        points_reversed=-per_kind.get("reverse", (0, 0))[0],
        points_redeemed=-per_kind.get("redeem", (0, 0))[0],
        points_outstanding=sum(int(held) for _members, held in by_level.values()),
        rewards_redeemed=per_kind.get("redeem", (0, 0))[1],
    )


def members_page(
    session: Session, principal: Principal, merchant_id: int, paging: PageParams
) -> Page[schemas.MemberRowOut]:
    """The merchant's members, newest first, by masked card number: no names."""
    merchant = merchant_for(session, principal, merchant_id, MANAGE)
    program = _program(session, merchant)
    statement = (
        select(Membership)
        .where(Membership.program_id == program.id)
        .order_by(Membership.joined_at.desc(), Membership.id.desc())
    )
    rows, total = fetch_page(session, statement, paging)
    items = [
        schemas.MemberRowOut(
            number_masked=mask_number(member.number),
            level=member.level,
            points=member.points,
            lifetime_points=member.lifetime_points,
            joined_at=member.joined_at,
        )
        for member in rows
    ]
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)


def mask_number(number: str) -> str:
    """A card number as merchants' lists show it: only the last four digits."""
    return "**** **** **** " + number[-4:]


# -- rewards --------------------------------------------------------------------------------------------


def _rewards(session: Session, program: MemberProgram, offered_only: bool) -> list[schemas.RewardOut]:
    statement = select(Reward).where(Reward.program_id == program.id).order_by(Reward.points_cost, Reward.id)
    if offered_only:
        statement = statement.where(Reward.active)
    return [schemas.RewardOut.model_validate(reward) for reward in session.scalars(statement)]


def rewards(session: Session, principal: Principal, merchant_id: int) -> list[schemas.RewardOut]:
    """Every reward of the merchant's card, withdrawn ones too, cheapest first."""
    merchant = merchant_for(session, principal, merchant_id, MANAGE)
    return _rewards(session, _program(session, merchant), offered_only=False)


def add_reward(
    session: Session, principal: Principal, merchant_id: int, data: schemas.RewardIn
) -> schemas.RewardOut:
    merchant = merchant_for(session, principal, merchant_id, MANAGE)
    reward = Reward(program_id=_program(session, merchant).id, redeemed=0, **data.model_dump())
    session.add(reward)
    session.flush()
    _audit_reward(session, principal, "market.reward.added", merchant, reward.id, data)
    return schemas.RewardOut.model_validate(reward)


def change_reward(
    session: Session, principal: Principal, merchant_id: int, reward_id: int, data: schemas.RewardIn
) -> schemas.RewardOut:
    """Change a reward; its stock cannot fall below what was already redeemed (checked in the update itself,
    as redemptions may be under way)."""
    merchant = merchant_for(session, principal, merchant_id, MANAGE)
    program = _program(session, merchant)
    reward = session.get(Reward, reward_id)
    if reward is None or reward.program_id != program.id:
        raise NotFound(_("Reward %(id)s does not exist.", id=reward_id))
    enough = [] if data.stock is None else [Reward.redeemed <= data.stock]
    changed = session.execute(
        update(Reward)
        .where(Reward.id == reward.id, *enough)
        .values(**data.model_dump())
        .execution_options(synchronize_session=False)
    )
    session.refresh(reward)
    if changed.rowcount == 0:  # type: ignore[attr-defined]
        raise Conflict(
            _("%(n)s of this reward were redeemed already: the stock cannot be lower.", n=reward.redeemed),
            slug="stock-below-redeemed",
        )
    _audit_reward(session, principal, "market.reward.changed", merchant, reward.id, data)
    return schemas.RewardOut.model_validate(reward)


def _audit_reward(
    session: Session,
    principal: Principal,
    action: str,
    merchant: Merchant,
    reward_id: int,
    data: schemas.RewardIn,
) -> None:
    audit.record(
        session,
        actor=principal.actor,
        action=action,
        object_type="reward",
        object_id=str(reward_id),
        details={"merchant": merchant.id, **data.model_dump(mode="json")},
    )


# -- residents' cards -----------------------------------------------------------------------------------


def join(session: Session, principal: Principal, merchant_id: int) -> tuple[schemas.CardOut, bool]:
    """The resident's card of the merchant's program, made now (True) or held already (False)."""
    person_id = person_of(principal)
    merchant, program = _open_program(session, merchant_id)
    member, joined = _enrol(session, program, person_id)
    return _card(merchant, program, member), joined


def _membership_of(session: Session, program: MemberProgram, person_id: int) -> Membership | None:
    return session.scalar(
        select(Membership).where(Membership.program_id == program.id, Membership.person_id == person_id)
    )


def _enrol(session: Session, program: MemberProgram, person_id: int) -> tuple[Membership, bool]:
    """The person's card of the program: a new one under a fresh number (True), or the one they hold. Two
    joins at once make one card (``ON CONFLICT DO NOTHING`` on (program, person), then the other's row)."""
    entry_level = _level_at(program.levels, 0)
    for _attempt in range(3):
        made = session.execute(
            upsert_into(session, Membership)
            .values(
                program_id=program.id,
                person_id=person_id,
                number=f"{secrets.randbelow(10**CARD_DIGITS):0{CARD_DIGITS}d}",
                points=0,
                lifetime_points=0,
                level=entry_level["name"] if entry_level else None,
                active=True,
                joined_at=utcnow(),
            )
            .on_conflict_do_nothing()
            .returning(Membership.id)
        ).scalar_one_or_none()
        if made is not None:
            member = session.get(Membership, made)
            assert member is not None
            return member, True
        held = _membership_of(session, program, person_id)
        if held is not None:
            return held, False
    raise Conflict(_("Could not issue a card number; try again."), slug="code-clash")


def _standing(program: MemberProgram, member: Membership) -> dict[str, Any]:
    level = next((level for level in program.levels if level["name"] == member.level), None)
    upcoming = next((level for level in program.levels if level["min_points"] > member.lifetime_points), None)
    return {
        "number": member.number,
        "level": member.level,
        "discount_percent": level.get("discount_percent") if level else None,
        "points": member.points,
        "lifetime_points": member.lifetime_points,
        "next_level": upcoming["name"] if upcoming else None,
        "points_to_next_level": upcoming["min_points"] - member.lifetime_points if upcoming else None,
        "joined_at": member.joined_at,
    }


def _card(merchant: Merchant, program: MemberProgram, member: Membership) -> schemas.CardOut:
    return schemas.CardOut(
        **_standing(program, member),
        merchant_id=merchant.id,
        merchant_name=merchant.name,
        title=program.title,
    )


def my_cards(session: Session, principal: Principal) -> list[schemas.CardOut]:
    rows = session.execute(
        select(Membership, MemberProgram, Merchant)
        .join(MemberProgram, MemberProgram.id == Membership.program_id)
        .join(Merchant, Merchant.id == MemberProgram.merchant_id)
        .where(Membership.person_id == person_of(principal))
        .order_by(Membership.joined_at, Membership.id)
    )
    return [_card(merchant, program, member) for member, program, merchant in rows]


def my_card(session: Session, principal: Principal, number: str) -> schemas.CardDetailOut:
    """One of my cards: its QR code for the till, its latest points entries and the rewards on offer."""
    row = session.execute(
        select(Membership, MemberProgram, Merchant)
        .join(MemberProgram, MemberProgram.id == Membership.program_id)
        .join(Merchant, Merchant.id == MemberProgram.merchant_id)
        .where(Membership.number == number, Membership.person_id == person_of(principal))
    ).one_or_none()
    if row is None:
        raise NotFound(_("You hold no member card %(number)s.", number=number))
    member, program, merchant = row
    return schemas.CardDetailOut(
        card=_card(merchant, program, member),
        qr_svg=qr_svg(member.number),
        history=_history(session, member),
        rewards=_rewards(session, program, offered_only=True),
    )


def _history(session: Session, member: Membership) -> list[schemas.PointsEntryOut]:
    rows = session.execute(
        select(PointsEntry, Reward.title)
        .outerjoin(Reward, Reward.id == PointsEntry.reward_id)
        .where(PointsEntry.membership_id == member.id)
        .order_by(PointsEntry.id.desc())
        .limit(HISTORY)
    ).all()
    reversed_keys = set(
        session.scalars(
            select(PointsEntry.client_key).where(
                PointsEntry.membership_id == member.id, PointsEntry.kind == "reverse"
            )
        )
    )
    return [_entry(entry, title, _reversal_key(entry.id) in reversed_keys) for entry, title in rows]


def _entry(entry: PointsEntry, reward_title: str | None, reversed_: bool = False) -> schemas.PointsEntryOut:
    return schemas.PointsEntryOut(
        id=entry.id,
        kind=entry.kind,
        points=entry.points,
        balance_after=entry.balance_after,
        amount_cents=entry.amount_cents,
        reward_id=entry.reward_id,
        reward_title=reward_title,
        store_id=entry.store_id,
        occurred_at=entry.occurred_at,
        reversed=reversed_,
    )


# -- the till -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Change:
    """One change of a member's points, as its entry records it."""

    kind: str
    points: int  # signed: + earned, − spent or taken back
    client_key: str
    recorded_by: str
    store_id: int | None
    amount_cents: int | None = None
    reward_id: int | None = None


def _till(session: Session, principal: Principal, merchant_id: int) -> tuple[Merchant, MemberProgram]:
    merchant = merchant_for(session, principal, merchant_id, REDEEM)
    return merchant, _program(session, merchant)


def _store_id(session: Session, merchant: Merchant, store_id: int | None) -> int | None:
    return None if store_id is None else till_store(session, merchant, store_id).id


def _member(
    session: Session,
    settings: Settings,
    principal: Principal,
    program: MemberProgram,
    ref: schemas.MemberRef,
    enrol: bool,
) -> tuple[Membership, bool]:
    """The member the till names, by card number or citizen card; with ``enrol``, a citizen card's holder
    who is not a member becomes one (True)."""
    if ref.citizen_card is None:
        return _numbered(session, program, ref.card_number or ""), False
    if not program.accepts_citizen_card:
        raise Conflict(
            _("This member card does not take the citizen card; scan the member card."),
            slug="citizen-card-not-accepted",
        )
    person_id = card_holder(session, settings, ref.citizen_card)
    member = _membership_of(session, program, person_id)
    if member is not None:
        return member, False
    if not enrol:
        raise NotFound(_("The card holder is not a member yet; they can join now."), slug="not-a-member")
    _require_open(program)
    member, enrolled = _enrol(session, program, person_id)
    if enrolled:  # not when the resident joined by themselves a moment ago
        audit.record(
            session,
            actor=principal.actor,
            action="market.member.enrolled",
            object_type="membership",
            object_id=str(member.id),
            details={"merchant": program.merchant_id, "by": "citizen-card"},
        )
    return member, enrolled


def _numbered(session: Session, program: MemberProgram, number: str) -> Membership:
    member = session.scalar(
        select(Membership).where(Membership.number == number, Membership.program_id == program.id)
    )
    if member is None:
        raise NotFound(
            _("No member of this card has the number %(number)s.", number=number), slug="not-a-member"
        )
    return member


def _till_member(program: MemberProgram, member: Membership, enrolled: bool) -> schemas.TillMemberOut:
    return schemas.TillMemberOut(**_standing(program, member), enrolled=enrolled)


def look_up(
    session: Session,
    principal: Principal,
    merchant_id: int,
    data: schemas.MemberLookupIn,
    settings: Settings,
) -> schemas.TillCardOut:
    """What the till shows after scanning a member card or a citizen card (enrolling its holder if asked)."""
    _merchant, program = _till(session, principal, merchant_id)
    member, enrolled = _member(session, settings, principal, program, data, data.enrol)
    return _till_card(session, program, member, enrolled)


def till_card(session: Session, principal: Principal, merchant_id: int, number: str) -> schemas.TillCardOut:
    _merchant, program = _till(session, principal, merchant_id)
    member = _numbered(session, program, number.replace(" ", ""))
    return _till_card(session, program, member, enrolled=False)


def _till_card(
    session: Session, program: MemberProgram, member: Membership, enrolled: bool
) -> schemas.TillCardOut:
    return schemas.TillCardOut(
        member=_till_member(program, member, enrolled),
        history=_history(session, member),
        rewards=_rewards(session, program, offered_only=True),
    )


def record_purchase(
    session: Session, principal: Principal, merchant_id: int, data: schemas.PurchaseIn, settings: Settings
) -> schemas.PointsOut:
    """Points for a purchase: floor(amount in cents × points per yuan / 100), the level from the new
    lifetime total."""
    merchant, program = _till(session, principal, merchant_id)
    store_id = _store_id(session, merchant, data.store_id)
    member, enrolled = _member(session, settings, principal, program, data, data.enrol)
    earned = data.amount_cents * program.points_per_yuan // 100
    lifetime = Membership.lifetime_points + earned

    def earn() -> int:
        _require_open(program)
        return int(
            session.execute(
                update(Membership)
                .where(Membership.id == member.id)
                .values(
                    points=Membership.points + earned,
                    lifetime_points=lifetime,
                    level=_level_reached(program.levels, lifetime),
                )
                .returning(Membership.points)
                .execution_options(synchronize_session=False)
            ).scalar_one()
        )

    change = _Change(
        "earn", earned, data.client_key, principal.actor, store_id, amount_cents=data.amount_cents
    )
    return _record(session, program, member, change, earn, enrolled)


def redeem_reward(
    session: Session,
    principal: Principal,
    merchant_id: int,
    data: schemas.RewardRedemptionIn,
    settings: Settings,
) -> schemas.PointsOut:
    """A reward for points: the points and the stock move together or not at all."""
    merchant, program = _till(session, principal, merchant_id)
    store_id = _store_id(session, merchant, data.store_id)
    member, _enrolled = _member(session, settings, principal, program, data, enrol=False)
    reward = session.get(Reward, data.reward_id)
    if reward is None or reward.program_id != program.id:
        raise NotFound(_("Reward %(id)s does not exist.", id=data.reward_id))
    cost = reward.points_cost

    def pay() -> int:
        _require_open(program)
        if not reward.active:
            raise Conflict(_("This reward is no longer offered."), slug="reward-withdrawn")
        balance = session.execute(
            update(Membership)
            .where(Membership.id == member.id, Membership.points >= cost)
            .values(points=Membership.points - cost)
            .returning(Membership.points)
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()
        if balance is None:
            raise Conflict(
                _("This reward costs %(cost)s points; the member has fewer.", cost=cost),
                slug="insufficient-points",
                points_cost=cost,
            )
        taken = session.execute(
            update(Reward)
            .where(Reward.id == reward.id, or_(Reward.stock.is_(None), Reward.redeemed < Reward.stock))
            .values(redeemed=Reward.redeemed + 1)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount == 0:  # type: ignore[attr-defined]
            raise Conflict(_("This reward has run out."), slug="out-of-stock")
        return int(balance)

    change = _Change("redeem", -cost, data.client_key, principal.actor, store_id, reward_id=reward.id)
    return _record(session, program, member, change, pay)


def reverse(session: Session, principal: Principal, merchant_id: int, entry_id: int) -> schemas.PointsOut:
    """Take back the points of a refunded purchase, once (a second request answers the first reversal).
    Lifetime points and the level stay: they only grow."""
    merchant, program = _till(session, principal, merchant_id)
    earning = session.get(PointsEntry, entry_id)
    if earning is None or earning.program_id != program.id:
        raise NotFound(_("Points entry %(id)s does not exist.", id=entry_id))
    if earning.kind != "earn":
        raise Conflict(_("Only points earned on a purchase can be reversed."), slug="not-an-earning")
    member = session.get(Membership, earning.membership_id)
    assert member is not None
    taken = earning.points

    def take_back() -> int:
        balance = session.execute(
            update(Membership)
            .where(Membership.id == member.id, Membership.points >= taken)
            .values(points=Membership.points - taken)
            .returning(Membership.points)
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()
        if balance is None:
            raise Conflict(
                _("The member has spent these points already; they cannot be taken back."),
                slug="points-spent",
            )
        return int(balance)

    change = _Change("reverse", -taken, _reversal_key(earning.id), principal.actor, earning.store_id)
    answer = _record(session, program, member, change, take_back)
    if not answer.replayed:
        audit.record(
            session,
            actor=principal.actor,
            action="market.points.reversed",
            object_type="points_entry",
            object_id=str(earning.id),
            details={"merchant": merchant.id, "points": taken},
        )
    return answer


def _reversal_key(entry_id: int) -> str:
    return f"reversal:{entry_id}"


def _record(
    session: Session,
    program: MemberProgram,
    member: Membership,
    change: _Change,
    apply: Callable[[], int],
    enrolled: bool = False,
) -> schemas.PointsOut:
    """Apply one change (``apply`` moves the points and returns the balance) and write its entry; or answer
    the entry an earlier request with the same key wrote."""
    # The lock first: a retry of a request still running waits here, then finds that request's entry.
    session.execute(select(Membership.id).where(Membership.id == member.id).with_for_update())
    earlier = session.scalar(
        select(PointsEntry).where(
            PointsEntry.program_id == program.id, PointsEntry.client_key == change.client_key
        )
    )
    if earlier is not None:
        if earlier.membership_id != member.id or earlier.kind != change.kind:
            raise _key_reused()
        return _answer(session, program, member, earlier, replayed=True, enrolled=False)
    balance = apply()
    written = session.execute(
        upsert_into(session, PointsEntry)
        .values(
            program_id=program.id,
            membership_id=member.id,
            kind=change.kind,
            points=change.points,
            balance_after=balance,
            amount_cents=change.amount_cents,
            reward_id=change.reward_id,
            store_id=change.store_id,
            client_key=change.client_key,
            recorded_by=change.recorded_by,
            occurred_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["program_id", "client_key"])
        .returning(PointsEntry.id)
    ).scalar_one_or_none()
    if written is None:  # another member's request took the key a moment ago (it holds another row's lock)
        raise _key_reused()
    entry = session.get(PointsEntry, written)
    assert entry is not None
    return _answer(session, program, member, entry, replayed=False, enrolled=enrolled)


def _key_reused() -> Conflict:
    return Conflict(_("This client key was used for another request."), slug="key-reused")


def _answer(
    session: Session,
    program: MemberProgram,
    member: Membership,
    entry: PointsEntry,
    replayed: bool,
    enrolled: bool,
) -> schemas.PointsOut:
    session.refresh(member)
    reward = session.get(Reward, entry.reward_id) if entry.reward_id is not None else None
    return schemas.PointsOut(
        entry=_entry(entry, reward.title if reward else None),
        member=_till_member(program, member, enrolled),
        replayed=replayed,
    )
