"""Public ratings of city projects: the operator lists the projects, each resident rates a project once on
the five-level scale with a comment (rating again replaces the earlier one), and anyone sees the count,
the average and the distribution. The evaluation domain reads the summaries through the public face."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cityhub.domains.identity import Principal, get_organization, get_organization_by_code, require_citywide
from cityhub.domains.voice import schemas
from cityhub.domains.voice.models import Project, ProjectRating
from cityhub.kernel import audit
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import Forbidden, NotFound
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
            )
        )
    return summaries
