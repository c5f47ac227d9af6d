"""Residents' proposals (Decidim/CONSUL style): a resident proposes, others support it until its closing date
(each person at most ``supports_per_person`` supports in all), the city answers officially once it matters
(evaluating, accepted with the project that carries it out, or rejected), anyone may comment, and residents
flag abuse to the moderators, who hide or keep what was flagged (enough flags hide it until they look).

Counters move by conditional updates in the request's transaction, so concurrent supports never exceed the
per-person cap, never count a person twice and never lose a support."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Literal

from sqlalchemy import Select, and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cityhub.domains.identity import (
    Notice,
    Principal,
    accounts_holding,
    get_person,
    get_unit,
    mask_name,
    notify,
    require_citywide,
)
from cityhub.domains.voice import schemas
from cityhub.domains.voice.models import Comment, Flag, Project, Proposal, Support, Supporter
from cityhub.domains.voice.service.places import community_id
from cityhub.domains.voice.settings import VoiceSettings
from cityhub.kernel import audit
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import Conflict, Forbidden, NotFound
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.i18n import lazy_gettext as _l
from cityhub.kernel.pagination import PageParams

ANSWER = "voice.proposals.answer"
MODERATE = "voice.participation.moderate"
COLLECTING = ("open", "evaluating")
Target = Literal["proposal", "comment"]

THRESHOLD_REACHED = (
    _l("Proposal “%(title)s” reached its supports"),
    _l("%(supports)s people support it: the city will answer it."),
)
ANSWERED = (
    _l("The city answered the proposal “%(title)s”"),
    _l("%(answer)s"),
)
COMMENTED = (
    _l("New comment on your proposal “%(title)s”"),
    _l("%(body)s"),
)
HIDDEN = (
    _l("Your post was hidden by the moderators"),
    _l("It broke the rules of the participation space: %(text)s"),
)


def _resident(principal: Principal) -> int:
    """The person behind a resident's own account; keys and the system take no part in participation."""
    if principal.kind != "account" or principal.person_id is None:
        raise Forbidden(_("Only a resident's own account can take part."), slug="residents-only")
    return principal.person_id


def _display_name(session: Session, person_id: int) -> str:
    return mask_name(get_person(session, person_id).name)


# -- proposals -----------------------------------------------------------------------------------------------


def propose(
    session: Session, principal: Principal, given: schemas.ProposalIn, settings: VoiceSettings
) -> schemas.ProposalOut:
    person_id = _resident(principal)
    account_id = principal.account_id
    assert account_id is not None  # a resident's own account
    now = utcnow()
    proposal = Proposal(
        title=given.title.strip(),
        body=given.body.strip(),
        author_account_id=account_id,
        author_person_id=person_id,
        author_name=_display_name(session, person_id),
        org_unit_id=community_id(session, given.community) if given.community else None,
        state="open",
        supports=0,
        threshold=settings.proposal_support_threshold,
        supports_close_at=now + timedelta(days=settings.proposal_support_days),
        created_at=now,
        flags=0,
        reviewed=True,
    )
    session.add(proposal)
    session.flush()
    return _shape(session, [proposal], principal)[0]


def _visible(principal: Principal | None) -> Select[Proposal]:
    """Proposals the caller may see: hidden ones only to their author and the moderators."""
    statement = select(Proposal)
    if principal is not None and principal.has(MODERATE):
        return statement
    if principal is not None and principal.account_id is not None:
        return statement.where(
            or_(Proposal.hidden_at.is_(None), Proposal.author_account_id == principal.account_id)
        )
    return statement.where(Proposal.hidden_at.is_(None))


def _get(session: Session, principal: Principal | None, proposal_id: int) -> Proposal:
    proposal = session.scalar(_visible(principal).where(Proposal.id == proposal_id))
    if proposal is None:
        raise NotFound(_("Proposal %(id)s does not exist.", id=proposal_id))
    return proposal


def listing(
    session: Session,
    principal: Principal | None,
    paging: PageParams,
    state: str | None,
    order: Literal["supports", "newest"],
) -> tuple[list[schemas.ProposalOut], int]:
    """Public proposals, most supported or newest first; hidden ones never appear in the list."""
    statement = select(Proposal).where(Proposal.hidden_at.is_(None))
    if state is not None:
        statement = statement.where(Proposal.state == state)
    if order == "supports":
        statement = statement.order_by(Proposal.supports.desc(), Proposal.id.desc())
    else:
        statement = statement.order_by(Proposal.id.desc())
    total = session.scalar(select(func.count()).select_from(statement.order_by(None).subquery())) or 0
    rows = session.scalars(statement.limit(paging.limit).offset(paging.offset)).all()
    return _shape(session, rows, principal), total


def one(session: Session, principal: Principal | None, proposal_id: int) -> schemas.ProposalOut:
    return _shape(session, [_get(session, principal, proposal_id)], principal)[0]


def several(session: Session, principal: Principal | None, ids: Sequence[int]) -> list[schemas.ProposalOut]:
    """The proposals of ``ids`` the caller may see, in id order, shaped together (one set of lookups)."""
    rows = session.scalars(_visible(principal).where(Proposal.id.in_(ids)).order_by(Proposal.id)).all()
    return _shape(session, rows, principal)


def withdraw(session: Session, principal: Principal, proposal_id: int) -> schemas.ProposalOut:
    """The author takes a proposal back before the city answers it; its supporters get their supports back."""
    proposal = _get(session, principal, proposal_id)
    if proposal.author_account_id != principal.account_id:
        raise Forbidden(_("Only the author can withdraw a proposal."), slug="not-the-author")
    withdrawn = session.execute(
        update(Proposal).where(Proposal.id == proposal.id, Proposal.state == "open").values(state="withdrawn")
    )
    if withdrawn.rowcount == 0:  # type: ignore[attr-defined]
        raise Conflict(_("Only a proposal the city has not answered can be withdrawn."), slug="answered")
    supporters = select(Support.person_id).where(Support.proposal_id == proposal.id)
    session.execute(
        update(Supporter)
        .where(Supporter.person_id.in_(supporters))
        .values(supports=Supporter.supports - 1)
        .execution_options(synchronize_session=False)
    )
    session.refresh(proposal)
    return _shape(session, [proposal], principal)[0]


def answer(
    session: Session, principal: Principal, proposal_id: int, given: schemas.ProposalAnswerIn
) -> schemas.ProposalOut:
    """The city's official answer; the author and every supporter are told."""
    require_citywide(principal, ANSWER)
    proposal = _get(session, principal, proposal_id)
    if proposal.state == "withdrawn":
        raise Conflict(_("The author withdrew this proposal."), slug="withdrawn")
    project_id = None
    if given.project is not None:
        if given.state != "accepted":
            raise Conflict(_("Only an accepted proposal is carried out by a project."), slug="not-accepted")
        project = session.scalar(select(Project).where(Project.code == given.project))
        if project is None:
            raise NotFound(_("Project %(code)s does not exist.", code=given.project))
        project_id = project.id
    proposal.state, proposal.answer = given.state, given.answer.strip()
    proposal.answered_by, proposal.answered_at, proposal.project_id = principal.actor, utcnow(), project_id
    session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="voice.proposal.answered",
        object_type="voice_proposal",
        object_id=str(proposal.id),
        details={"state": given.state, "project": given.project},
    )
    supporters = session.scalars(select(Support.account_id).where(Support.proposal_id == proposal.id))
    params = {"title": proposal.title, "answer": proposal.answer}
    for account_id in sorted({proposal.author_account_id, *supporters}):
        notify(session, account_id, Notice("voice.proposal.answered", *ANSWERED, params, _link(proposal.id)))
    return _shape(session, [proposal], principal)[0]


def _link(proposal_id: int) -> str:
    return f"/voice/proposals/{proposal_id}"


# -- supports ------------------------------------------------------------------------------------------------


def supports_of(
    session: Session, principal: Principal, proposal_id: int, settings: VoiceSettings
) -> schemas.SupportsOut:
    proposal = _get(session, principal, proposal_id)
    return _supports_out(session, proposal, principal.person_id, settings)


def support(
    session: Session, principal: Principal, proposal_id: int, settings: VoiceSettings
) -> schemas.SupportsOut:
    person_id = _resident(principal)
    proposal = _get(session, principal, proposal_id)
    if proposal.author_person_id == person_id:
        raise Conflict(_("Authors cannot support their own proposal."), slug="own-proposal")
    _take_a_support(session, person_id, settings.supports_per_person)
    try:
        with session.begin_nested():
            session.add(
                Support(proposal_id=proposal.id, person_id=person_id, account_id=principal.account_id)
            )
    except IntegrityError as exc:
        raise Conflict(_("You already support this proposal."), slug="already-supported") from exc
    counted = session.execute(_collecting(proposal.id).values(supports=Proposal.supports + 1))
    if counted.rowcount == 0:  # type: ignore[attr-defined]
        raise Conflict(_("This proposal no longer collects supports."), slug="not-collecting")
    reached = session.execute(
        update(Proposal)
        .where(
            Proposal.id == proposal.id,
            Proposal.threshold_reached_at.is_(None),
            Proposal.supports >= Proposal.threshold,
        )
        .values(threshold_reached_at=utcnow())
    )
    session.refresh(proposal)
    if reached.rowcount:  # type: ignore[attr-defined]
        _tell_threshold_reached(session, proposal)
    return _supports_out(session, proposal, person_id, settings)


def _take_a_support(session: Session, person_id: int, cap: int) -> None:
    """Count one more support of the person, refusing past the cap (a conditional update, so two requests
    at once cannot both take the last one)."""
    if session.get(Supporter, person_id) is None:
        try:
            with session.begin_nested():
                session.add(Supporter(person_id=person_id, supports=0))
        except IntegrityError:  # the person's first support in another request at the same moment
            pass
    taken = session.execute(
        update(Supporter)
        .where(Supporter.person_id == person_id, Supporter.supports < cap)
        .values(supports=Supporter.supports + 1)
    )
    if taken.rowcount == 0:  # type: ignore[attr-defined]
        raise Conflict(
            _("You have given all your %(cap)s supports; take one back to support this.", cap=cap),
            slug="supports-used-up",
        )


def _collecting(proposal_id: int):  # type: ignore[no-untyped-def]
    return update(Proposal).where(
        Proposal.id == proposal_id,
        Proposal.state.in_(COLLECTING),
        Proposal.hidden_at.is_(None),
        Proposal.supports_close_at > utcnow(),
    )


def unsupport(
    session: Session, principal: Principal, proposal_id: int, settings: VoiceSettings
) -> schemas.SupportsOut:
    person_id = _resident(principal)
    proposal = _get(session, principal, proposal_id)
    removed = session.execute(
        delete(Support).where(Support.proposal_id == proposal.id, Support.person_id == person_id)
    )
    if removed.rowcount == 0:  # type: ignore[attr-defined]
        raise Conflict(_("You do not support this proposal."), slug="not-supported")
    counted = session.execute(_collecting(proposal.id).values(supports=Proposal.supports - 1))
    if counted.rowcount == 0:  # type: ignore[attr-defined]
        raise Conflict(_("This proposal no longer collects supports."), slug="not-collecting")
    session.execute(
        update(Supporter).where(Supporter.person_id == person_id).values(supports=Supporter.supports - 1)
    )
    session.refresh(proposal)
    return _supports_out(session, proposal, person_id, settings)


def _supports_out(
    session: Session, proposal: Proposal, person_id: int | None, settings: VoiceSettings
) -> schemas.SupportsOut:
    used = session.scalar(select(Supporter.supports).where(Supporter.person_id == person_id)) or 0
    supported = person_id is not None and (
        session.scalar(
            select(Support.id).where(Support.proposal_id == proposal.id, Support.person_id == person_id)
        )
        is not None
    )
    return schemas.SupportsOut(
        supports=proposal.supports,
        threshold=proposal.threshold,
        threshold_reached=proposal.threshold_reached_at is not None,
        supported=supported,
        remaining=max(settings.supports_per_person - used, 0),
    )


def _tell_threshold_reached(session: Session, proposal: Proposal) -> None:
    params: dict[str, str | int] = {"title": proposal.title, "supports": proposal.supports}
    recipients = {proposal.author_account_id, *accounts_holding(session, ANSWER)}
    for account_id in sorted(recipients):
        notice = Notice("voice.proposal.threshold", *THRESHOLD_REACHED, params, _link(proposal.id))
        notify(session, account_id, notice)


# -- comments ------------------------------------------------------------------------------------------------


def comments(
    session: Session, principal: Principal | None, proposal_id: int, paging: PageParams
) -> tuple[list[schemas.CommentOut], int]:
    """The thread, oldest first; hidden comments keep their place without their text (moderators see it)."""
    _get(session, principal, proposal_id)
    statement = select(Comment).where(Comment.proposal_id == proposal_id)
    total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    rows = session.scalars(
        statement.order_by(Comment.created_at, Comment.id).limit(paging.limit).offset(paging.offset)
    )
    moderator = principal is not None and principal.has(MODERATE)
    return [_comment_out(row, moderator) for row in rows], total


def _comment_out(row: Comment, moderator: bool) -> schemas.CommentOut:
    hidden = row.hidden_at is not None
    return schemas.CommentOut(
        id=row.id,
        author=row.author_name,
        body="" if hidden and not moderator else row.body,
        official=row.official,
        hidden=hidden,
        created_at=row.created_at,
    )


def comment(
    session: Session, principal: Principal, proposal_id: int, given: schemas.CommentIn
) -> schemas.CommentOut:
    """A resident's comment, or an official one from staff who may answer proposals."""
    official = principal.kind == "account" and principal.has(ANSWER)
    if not official:
        _resident(principal)
    proposal = _get(session, principal, proposal_id)
    if proposal.hidden_at is not None:
        raise Conflict(_("A hidden proposal takes no comments."), slug="hidden")
    account_id = principal.account_id
    assert account_id is not None  # an account, checked above
    author = principal.name if official else _display_name(session, principal.person_id or 0)
    row = Comment(
        proposal_id=proposal.id,
        account_id=account_id,
        author_name=author,
        body=given.body.strip(),
        official=official,
        created_at=utcnow(),
        flags=0,
        reviewed=True,
    )
    session.add(row)
    session.flush()
    if official:
        audit.record(
            session,
            actor=principal.actor,
            action="voice.proposal.official_comment",
            object_type="voice_proposal",
            object_id=str(proposal.id),
            details={"comment": row.id},
        )
    if proposal.author_account_id != account_id:
        params = {"title": proposal.title, "body": row.body[:200]}
        notice = Notice(
            "voice.proposal.comment", *COMMENTED, params, f"{_link(proposal.id)}#comment-{row.id}"
        )
        notify(session, proposal.author_account_id, notice)
    return _comment_out(row, moderator=False)


# -- moderation ----------------------------------------------------------------------------------------------


def _moderated(session: Session, target: Target, target_id: int) -> Proposal | Comment:
    found: Proposal | Comment | None = (
        session.get(Proposal, target_id) if target == "proposal" else session.get(Comment, target_id)
    )
    if found is None:
        raise NotFound(_("Nothing to moderate with id %(id)s.", id=target_id))
    return found


def flag(session: Session, principal: Principal, given: schemas.FlagIn, settings: VoiceSettings) -> None:
    """A resident reports an item once; enough reports hide it until a moderator has looked."""
    _resident(principal)
    item = _moderated(session, given.target, given.id)
    proposal_id = item.id if isinstance(item, Proposal) else item.proposal_id
    _get(session, principal, proposal_id)  # the flagger must be able to see it
    try:
        with session.begin_nested():
            session.add(
                Flag(
                    target=given.target,
                    target_id=given.id,
                    account_id=principal.account_id,
                    reason=given.reason,
                    note=given.note.strip(),
                )
            )
    except IntegrityError as exc:
        raise Conflict(_("You already reported this."), slug="already-flagged") from exc
    model = type(item)
    session.execute(update(model).where(model.id == item.id).values(flags=model.flags + 1, reviewed=False))
    session.execute(
        update(model)
        .where(model.id == item.id, model.hidden_at.is_(None), model.flags >= settings.flags_to_hide)
        .values(hidden_at=utcnow())
    )


def flagged(
    session: Session, principal: Principal, paging: PageParams
) -> tuple[list[schemas.FlaggedOut], int]:
    """Items flagged since their last review, most flagged first, proposals and comments together."""
    require_citywide(principal, MODERATE)
    waiting = (Proposal.reviewed.is_(False), Comment.reviewed.is_(False))
    total = sum(session.scalar(select(func.count()).where(condition)) or 0 for condition in waiting)
    wanted = paging.offset + paging.limit
    proposals = session.scalars(
        select(Proposal).where(waiting[0]).order_by(Proposal.flags.desc(), Proposal.id).limit(wanted)
    ).all()
    thread = session.scalars(
        select(Comment).where(waiting[1]).order_by(Comment.flags.desc(), Comment.id).limit(wanted)
    ).all()
    items: list[Proposal | Comment] = sorted(
        [*proposals, *thread], key=lambda item: (-item.flags, item.created_at)
    )
    chosen = items[paging.offset : wanted]
    reasons = _reasons(session, chosen)
    return [_flagged_out(item, reasons) for item in chosen], total


def _target_of(item: Proposal | Comment) -> Target:
    return "proposal" if isinstance(item, Proposal) else "comment"


def _reasons(session: Session, items: Sequence[Proposal | Comment]) -> dict[tuple[str, int], Counter[str]]:
    wanted = [and_(Flag.target == _target_of(item), Flag.target_id == item.id) for item in items]
    counted: dict[tuple[str, int], Counter[str]] = {}
    if wanted:
        rows = session.execute(
            select(Flag.target, Flag.target_id, Flag.reason, func.count())
            .where(or_(*wanted))
            .group_by(Flag.target, Flag.target_id, Flag.reason)
        )
        for target, target_id, reason, count in rows:
            counted.setdefault((target, target_id), Counter())[reason] = count
    return counted


def _flagged_out(
    item: Proposal | Comment, reasons: dict[tuple[str, int], Counter[str]]
) -> schemas.FlaggedOut:
    target = _target_of(item)
    return schemas.FlaggedOut(
        target=target,
        id=item.id,
        proposal_id=item.id if isinstance(item, Proposal) else item.proposal_id,
        text=f"{item.title}\n{item.body}" if isinstance(item, Proposal) else item.body,
        author=item.author_name,
        flags=item.flags,
        reasons=dict(reasons.get((target, item.id), Counter())),
        hidden=item.hidden_at is not None,
        created_at=item.created_at,
    )


def moderate(
    session: Session,
    principal: Principal,
    target: Target,
    target_id: int,
    decision: schemas.ModerationDecisionIn,
) -> None:
    """Hide the item (its author is told) or keep it, which also restores an item that flags hid."""
    require_citywide(principal, MODERATE)
    item = _moderated(session, target, target_id)
    newly_hidden = decision.hide and item.hidden_at is None
    item.hidden_at = (item.hidden_at or utcnow()) if decision.hide else None
    item.reviewed = True
    session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="voice.moderation.hidden" if decision.hide else "voice.moderation.kept",
        object_type=f"voice_{target}",
        object_id=str(item.id),
        details={"flags": item.flags},
    )
    if newly_hidden:
        author = item.author_account_id if isinstance(item, Proposal) else item.account_id
        text = item.title if isinstance(item, Proposal) else item.body[:100]
        notify(session, author, Notice("voice.moderation.hidden", *HIDDEN, {"text": text}))


# -- shapes --------------------------------------------------------------------------------------------------


def _shape(
    session: Session, rows: Sequence[Proposal], principal: Principal | None
) -> list[schemas.ProposalOut]:
    """Wire shapes of a page of proposals, with the few lookups they need done once for the page."""
    ids = [row.id for row in rows]
    comment_counts = _counts(
        session,
        select(Comment.proposal_id, func.count())
        .where(Comment.proposal_id.in_(ids), Comment.hidden_at.is_(None))
        .group_by(Comment.proposal_id),
    )
    person_id = principal.person_id if principal is not None else None
    supported = set(
        session.scalars(
            select(Support.proposal_id).where(Support.proposal_id.in_(ids), Support.person_id == person_id)
        )
    )
    project_ids = {row.project_id for row in rows if row.project_id is not None}
    carried = {
        project.id: project for project in session.scalars(select(Project).where(Project.id.in_(project_ids)))
    }
    units = {row.org_unit_id: get_unit(session, row.org_unit_id).code for row in rows if row.org_unit_id}
    now = utcnow()
    shaped = []
    for row in rows:
        project = carried.get(row.project_id) if row.project_id is not None else None
        shaped.append(
            schemas.ProposalOut(
                id=row.id,
                title=row.title,
                body=row.body,
                author=row.author_name,
                community=units.get(row.org_unit_id) if row.org_unit_id else None,
                state=row.state,
                supports=row.supports,
                threshold=row.threshold,
                threshold_reached=row.threshold_reached_at is not None,
                supports_close_at=row.supports_close_at,
                collecting=row.state in COLLECTING and row.hidden_at is None and row.supports_close_at > now,
                answer=row.answer,
                answered_at=row.answered_at,
                project=project.code if project is not None else None,
                progress=project.progress if project is not None else None,
                comments=comment_counts.get(row.id, 0),
                hidden=row.hidden_at is not None,
                created_at=row.created_at,
                supported=row.id in supported if person_id is not None else None,
                mine=principal is not None and row.author_account_id == principal.account_id,
            )
        )
    return shaped


def _counts(session: Session, statement: Select[int, int]) -> dict[int, int]:
    return {int(key): int(count) for key, count in session.execute(statement)}
