"""City projects: residents rate each project in public on the five-level scale with a comment (rating again
replaces the earlier one) and anyone sees the count, the average and the distribution, which the evaluation
domain reads through the public face. A project is also the result of the proposals it carries out: its
milestones are planned with dates, and reaching one moves the project's progress to the milestone's %."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cityhub.domains.identity import Principal, get_organization, get_organization_by_code, require_citywide
from cityhub.domains.voice import schemas
from cityhub.domains.voice.models import Milestone, Project, ProjectRating, Proposal
from cityhub.kernel import audit
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import Conflict, Forbidden, NotFound
from cityhub.kernel.i18n import gettext as _

MANAGE = "voice.projects.manage"
LEVELS = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class ProjectRatingSummary:
    """What the evaluation domain reads: a project's ratings since a moment."""

    code: str
    name_zh: str
    ratings: int
    average: float | None
    distribution: dict[int, int]
    progress: int  # how far the project is, 0-100 %


def save(session: Session, principal: Principal, given: schemas.ProjectIn) -> schemas.ProjectOut:
    """Create or update a project by code; audited."""
    require_citywide(principal, MANAGE)
    project = session.scalar(select(Project).where(Project.code == given.code)) or Project(code=given.code)
    project.name_zh, project.name_en, project.description = given.name_zh, given.name_en, given.description
    project.organization_id = (
        get_organization_by_code(session, given.department).id if given.department else None
    )
    session.add(project)
    session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="voice.project.saved",
        object_type="voice_project",
        object_id=project.code,
        details={"name": project.name_zh},
    )
    return project_out(session, project, None)


def rate(
    session: Session, principal: Principal, code: str, given: schemas.ProjectRatingIn
) -> schemas.ProjectOut:
    """A resident's rating; a second one replaces the first (a race of two ends with one row)."""
    if principal.kind != "account" or principal.person_id is None:
        raise Forbidden(_("Only a resident's own account can rate a project."), slug="residents-only")
    project = _project(session, code)
    values = {"level": given.level, "comment": given.comment.strip(), "rated_at": utcnow()}
    mine = (ProjectRating.project_id == project.id, ProjectRating.person_id == principal.person_id)
    replaced = session.execute(update(ProjectRating).where(*mine).values(**values))
    if replaced.rowcount == 0:  # type: ignore[attr-defined]
        try:
            with session.begin_nested():
                session.add(ProjectRating(project_id=project.id, person_id=principal.person_id, **values))
        except IntegrityError:  # rated at the same moment in another request: keep this one
            session.execute(update(ProjectRating).where(*mine).values(**values))
    return project_out(session, project, principal.person_id)


def listing(session: Session, person_id: int | None) -> list[schemas.ProjectOut]:
    return [
        project_out(session, row, person_id)
        for row in session.scalars(select(Project).order_by(Project.code))
    ]


def one(session: Session, code: str, person_id: int | None) -> schemas.ProjectOut:
    return project_out(session, _project(session, code), person_id)


def detail(session: Session, code: str, person_id: int | None) -> schemas.ProjectDetailOut:
    """A project with its result: progress, milestones in date order and the proposals it carries out."""
    project = _project(session, code)
    milestones = session.scalars(
        select(Milestone).where(Milestone.project_id == project.id).order_by(Milestone.due_on, Milestone.id)
    )
    carried = session.scalars(
        select(Proposal.id)
        .where(Proposal.project_id == project.id, Proposal.hidden_at.is_(None))
        .order_by(Proposal.id)
    )
    return schemas.ProjectDetailOut(
        **project_out(session, project, person_id).model_dump(),
        progress=project.progress,
        milestones=[schemas.MilestoneOut.model_validate(m) for m in milestones],
        proposals=list(carried),
    )


def add_milestone(
    session: Session, principal: Principal, code: str, given: schemas.MilestoneIn
) -> schemas.MilestoneOut:
    require_citywide(principal, MANAGE)
    project = _project(session, code)
    milestone = Milestone(project_id=project.id, **given.model_dump(), reached_on=None)
    session.add(milestone)
    session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="voice.project.milestone_planned",
        object_type="voice_project",
        object_id=project.code,
        details={"milestone": milestone.id, "title": milestone.title, "progress": milestone.progress},
    )
    return schemas.MilestoneOut.model_validate(milestone)


def reach_milestone(
    session: Session,
    principal: Principal,
    code: str,
    milestone_id: int,
    given: schemas.MilestoneReachedIn,
    timezone: str,
) -> schemas.ProjectDetailOut:
    """Mark a milestone reached (once); progress only moves forward, so steps reached out of order never
    take it back."""
    require_citywide(principal, MANAGE)
    project = _project(session, code)
    milestone = session.get(Milestone, milestone_id)
    if milestone is None or milestone.project_id != project.id:
        raise NotFound(_("Milestone %(id)s does not exist.", id=milestone_id))
    reached_on = given.reached_on or utcnow().astimezone(ZoneInfo(timezone)).date()
    marked = session.execute(
        update(Milestone)
        .where(Milestone.id == milestone.id, Milestone.reached_on.is_(None))
        .values(reached_on=reached_on)
    )
    if marked.rowcount == 0:  # type: ignore[attr-defined]
        raise Conflict(_("This milestone was already reached."), slug="milestone-reached")
    session.execute(
        update(Project)
        .where(Project.id == project.id, Project.progress < milestone.progress)
        .values(progress=milestone.progress)
    )
    audit.record(
        session,
        actor=principal.actor,
        action="voice.project.milestone_reached",
        object_type="voice_project",
        object_id=project.code,
        details={"milestone": milestone.id, "reached_on": reached_on.isoformat()},
    )
    session.expire_all()
    return detail(session, code, None)


def _project(session: Session, code: str) -> Project:
    project = session.scalar(select(Project).where(Project.code == code))
    if project is None:
        raise NotFound(_("Project %(code)s does not exist.", code=code))
    return project


def _distribution(session: Session, project_id: int, since: datetime | None = None) -> dict[int, int]:
    statement = (
        select(ProjectRating.level, func.count())
        .where(ProjectRating.project_id == project_id)
        .group_by(ProjectRating.level)
    )
    if since is not None:
        statement = statement.where(ProjectRating.rated_at >= since)
    counted = {int(level): int(count) for level, count in session.execute(statement)}
    return {level: counted.get(level, 0) for level in LEVELS}


def _average(distribution: dict[int, int]) -> float | None:
    total = sum(distribution.values())
    return round(sum(level * count for level, count in distribution.items()) / total, 2) if total else None


def project_out(session: Session, project: Project, person_id: int | None) -> schemas.ProjectOut:
    distribution = _distribution(session, project.id)
    my_level = None
    if person_id is not None:
        my_level = session.scalar(
            select(ProjectRating.level).where(
                ProjectRating.project_id == project.id, ProjectRating.person_id == person_id
            )
        )
    return schemas.ProjectOut(
        code=project.code,
        name_zh=project.name_zh,
        name_en=project.name_en,
        description=project.description,
        department=get_organization(session, project.organization_id).code
        if project.organization_id
        else None,
        ratings=sum(distribution.values()),
        average=_average(distribution),
        distribution={str(level): count for level, count in distribution.items()},
        my_level=my_level,
    )


def project_rating_summaries(session: Session, since: datetime | None = None) -> list[ProjectRatingSummary]:
    """Every project's ratings (given since ``since``, when set), for the evaluation domain."""
    summaries = []
    for project in session.scalars(select(Project).order_by(Project.code)):
        distribution = _distribution(session, project.id, since)
        summaries.append(
            ProjectRatingSummary(
                project.code,
                project.name_zh,
                sum(distribution.values()),
                _average(distribution),
                distribution,
                project.progress,
            )
        )
    return summaries
