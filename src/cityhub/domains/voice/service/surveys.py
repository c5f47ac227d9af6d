"""Surveys: the operator publishes a questionnaire (choices, scales, free text) open between two moments,
for the whole city or one community's residents; each resident answers once; the results are counted in
the database and shown to everyone when the survey says so. Free-text answers are for the organisers only,
and nothing ever tells who answered what."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, exists, func, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from cityhub.domains.identity import Principal, get_unit, require_citywide, units_in_scope
from cityhub.domains.voice import schemas
from cityhub.domains.voice.models import Survey, SurveyAnswer, SurveyResponse
from cityhub.domains.voice.service.places import community_id
from cityhub.kernel import audit
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import Conflict, Forbidden, NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _

MANAGE = "voice.surveys.manage"
TEXT_LIMIT = 4000
LATEST_TEXTS = 100
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,6}")

Answer = str | int | list[str]


@dataclass(frozen=True)
class _Row:
    """One stored answer: a picked option, a scale value or a text."""

    question: str
    option: str | None = None
    number: int | None = None
    text: str | None = None


def save(session: Session, principal: Principal, given: schemas.SurveyIn) -> schemas.SurveyOut:
    """Publish a survey or update it by code; audited. Once answered, its questions stay as they are."""
    require_citywide(principal, MANAGE)
    for name, text in _texts_of(given):
        if "\x00" in text:
            raise ValidationProblem(_("Remove the NUL characters."), field=name)
    unit_id = community_id(session, given.community) if given.community else None
    questions = [question.model_dump() for question in given.questions]
    # Locked: an answer arriving meanwhile either waits for this change or this change sees the answer.
    survey = session.scalar(
        select(Survey)
        .where(Survey.code == given.code)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if survey is None:
        survey = Survey(code=given.code, created_by=principal.actor, responses=0, questions=questions)
    elif _questions_of(survey) != given.questions:
        if session.scalar(select(exists().where(SurveyResponse.survey_id == survey.id))):
            raise Conflict(
                _("The survey has answers, so its questions can no longer change. Publish a new survey."),
                slug="survey-answered",
            )
        survey.questions = questions
    survey.title, survey.description = given.title, given.description
    survey.opens_at, survey.closes_at = given.opens_at, given.closes_at
    survey.org_unit_id, survey.results_public = unit_id, given.results_public
    session.add(survey)
    session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="voice.survey.saved",
        object_type="voice_survey",
        object_id=survey.code,
        details={"title": survey.title, "questions": len(questions), "community": given.community},
    )
    return survey_out(session, survey, principal)


def listing(session: Session, principal: Principal | None) -> list[schemas.SurveyOut]:
    """The surveys the caller may see, the newest opening first."""
    rows = session.scalars(
        select(Survey).where(_visible_to(principal)).order_by(Survey.opens_at.desc(), Survey.id.desc())
    ).all()
    answered = _answered_by(session, principal, [row.id for row in rows])
    units: dict[int, str] = {}
    return [survey_out(session, row, principal, answered, units) for row in rows]


def one(session: Session, principal: Principal | None, code: str) -> schemas.SurveyOut:
    return survey_out(session, _survey(session, principal, code), principal)


def answer(
    session: Session, principal: Principal, code: str, given: schemas.SurveyAnswersIn
) -> schemas.SurveyOut:
    """A resident's answers, once: checked in full first (one 422 names every bad answer), then stored as
    one row per picked option, scale value or text. A second answer, even at the same moment, is a 409."""
    if principal.kind != "account" or principal.person_id is None:
        raise Forbidden(_("Only a resident's own account can answer a survey."), slug="residents-only")
    survey = _survey(session, principal, code)
    now = utcnow()
    if now < survey.opens_at:
        raise Conflict(_("This survey has not opened yet."), slug="survey-not-open")
    if now >= survey.closes_at:
        raise Conflict(_("This survey has closed."), slug="survey-closed")
    mine = (SurveyResponse.survey_id == survey.id, SurveyResponse.person_id == principal.person_id)
    if session.scalar(select(exists().where(*mine))):
        raise Conflict(_("You have already answered this survey."), slug="already-answered")
    rows = _checked(_questions_of(survey), given.answers)
    try:
        with session.begin_nested():  # all or nothing, also when a page catches the problem and renders
            response = SurveyResponse(survey_id=survey.id, person_id=principal.person_id, submitted_at=now)
            session.add(response)
            session.flush()  # the unique (survey, person) pair refuses a second answer, also a concurrent one
            counted = session.execute(
                update(Survey)
                .where(Survey.id == survey.id)
                .values(responses=Survey.responses + 1)
                .returning(Survey.responses, Survey.questions)
                .execution_options(synchronize_session=False)
            ).one()
            if counted.questions != survey.questions:  # changed while these answers were checked
                raise Conflict(_("The survey changed meanwhile; load it again."), slug="survey-changed")
            session.add_all(
                SurveyAnswer(
                    response_id=response.id,
                    survey_id=survey.id,
                    question=row.question,
                    option=row.option,
                    number=row.number,
                    text=row.text,
                )
                for row in rows
            )
            session.flush()
    except IntegrityError as exc:
        raise Conflict(_("You have already answered this survey."), slug="already-answered") from exc
    set_committed_value(survey, "responses", int(counted.responses))  # as counted, not written back
    return survey_out(session, survey, principal, {survey.id})


def results(session: Session, principal: Principal | None, code: str) -> schemas.SurveyResultsOut:
    """The counts per option and scale value, computed by the database; free text for the organisers."""
    survey = _survey(session, principal, code)
    organiser = principal is not None and principal.has(MANAGE)
    if not organiser and not survey.results_public:
        raise Forbidden(_("The results of this survey are kept for its organisers."), slug="results-private")
    counts: dict[tuple[str, str | int], int] = {}
    for question, option, number, count in session.execute(
        select(SurveyAnswer.question, SurveyAnswer.option, SurveyAnswer.number, func.count())
        .where(SurveyAnswer.survey_id == survey.id, SurveyAnswer.text.is_(None))
        .group_by(SurveyAnswer.question, SurveyAnswer.option, SurveyAnswer.number)
    ):
        value = option if option is not None else number
        if value is not None:
            counts[(question, value)] = int(count)
    answered = {
        question: int(count)
        for question, count in session.execute(
            select(SurveyAnswer.question, func.count(func.distinct(SurveyAnswer.response_id)))
            .where(SurveyAnswer.survey_id == survey.id)
            .group_by(SurveyAnswer.question)
        )
    }
    return schemas.SurveyResultsOut(
        code=survey.code,
        title=survey.title,
        responses=survey.responses,
        questions=[
            _result(session, survey, question, counts, answered.get(question.key, 0), organiser)
            for question in _questions_of(survey)
        ],
    )


def answers_from_form(survey: schemas.SurveyOut, fields: dict[str, list[str]]) -> schemas.SurveyAnswersIn:
    """A posted page form as answers: each question's field carries its key (a multiple choice once per
    picked option); empty fields are unanswered. A scale value that is no whole number goes on as text, so
    that the answer's checks name it along with every other bad answer."""
    answers: dict[str, Answer] = {}
    for question in survey.questions:
        values = [value.strip() for value in fields.get(question.key, []) if value.strip()]
        if not values:
            continue
        if question.kind == "multiple":
            answers[question.key] = values
        elif len(values) > 1:
            answers[question.key] = values  # refused below: one answer only
        elif question.kind == "scale" and _WHOLE_NUMBER.fullmatch(values[0]):
            answers[question.key] = int(values[0])
        else:
            answers[question.key] = values[0]
    return schemas.SurveyAnswersIn(answers=answers)


def survey_out(
    session: Session,
    survey: Survey,
    principal: Principal | None,
    answered: set[int] | None = None,
    units: dict[int, str] | None = None,
) -> schemas.SurveyOut:
    if answered is None:
        answered = _answered_by(session, principal, [survey.id])
    community = None
    if survey.org_unit_id is not None:
        units = {} if units is None else units
        if survey.org_unit_id not in units:
            units[survey.org_unit_id] = get_unit(session, survey.org_unit_id).code
        community = units[survey.org_unit_id]
    signed_in = principal is not None and principal.person_id is not None
    return schemas.SurveyOut(
        code=survey.code,
        title=survey.title,
        description=survey.description,
        questions=_questions_of(survey),
        opens_at=survey.opens_at,
        closes_at=survey.closes_at,
        community=community,
        results_public=survey.results_public,
        state=_state(survey),
        responses=survey.responses,
        answered=survey.id in answered if signed_in else None,
    )


# -- helpers ---------------------------------------------------------------------------------------------


def _survey(session: Session, principal: Principal | None, code: str) -> Survey:
    """The survey, if the caller may see it; the same 404 whether it is missing or out of sight."""
    survey = None
    if "\x00" not in code:
        survey = session.scalar(select(Survey).where(Survey.code == code, _visible_to(principal)))
    if survey is None:
        raise NotFound(_("Survey %(code)s does not exist.", code=code.replace("\x00", "")))
    return survey


def _visible_to(principal: Principal | None) -> ColumnElement[bool]:
    """Organisers see every survey; others those for the whole city and those of a community that lies
    within one of their grants' subtrees (a resident's own community, a district official's communities)
    or that contains one (a district-wide survey for a resident of one of its communities)."""
    if principal is not None and principal.has(MANAGE):
        return true()
    whole_city = Survey.org_unit_id.is_(None)
    if principal is None or not principal.grants:
        return whole_city
    paths = sorted({grant.org_path for grant in principal.grants})
    below = units_in_scope(paths).subquery()
    above = sorted({int(part) for path in paths for part in path.split("/") if part.isdigit()})
    return whole_city | Survey.org_unit_id.in_(select(below.c.id)) | Survey.org_unit_id.in_(above)


def _answered_by(session: Session, principal: Principal | None, survey_ids: list[int]) -> set[int]:
    if principal is None or principal.person_id is None or not survey_ids:
        return set()
    return set(
        session.scalars(
            select(SurveyResponse.survey_id).where(
                SurveyResponse.person_id == principal.person_id, SurveyResponse.survey_id.in_(survey_ids)
            )
        )
    )


def _state(survey: Survey) -> Literal["upcoming", "open", "closed"]:
    now = utcnow()
    if now < survey.opens_at:
        return "upcoming"
    return "open" if now < survey.closes_at else "closed"


def _questions_of(survey: Survey) -> list[schemas.QuestionIn]:
    return [schemas.QuestionIn.model_validate(raw) for raw in survey.questions]


def _texts_of(given: schemas.SurveyIn) -> Iterable[tuple[str, str]]:
    """The survey's free texts by field, to refuse what the databases cannot store (NUL)."""
    yield from (
        ("title", given.title),
        ("description", given.description),
        ("community", given.community or ""),
    )
    for question in given.questions:
        yield "questions", question.text
        yield from (("questions", option.label) for option in question.options)


def _checked(questions: list[schemas.QuestionIn], given: dict[str, Answer]) -> list[_Row]:
    """The rows to store; one 422 names every unknown, missing or bad answer."""
    known = {question.key for question in questions}
    errors = [
        {"field": key[:100], "detail": _("This survey asks no such question.")}
        for key in sorted(set(given) - known)
    ]
    rows: list[_Row] = []
    for question in questions:
        try:
            rows += _rows(question, given.get(question.key))
        except ValueError as exc:
            errors.append({"field": question.key, "detail": str(exc)})
    if errors:
        raise ValidationProblem(_("Some answers need correcting."), errors=errors)
    return rows


def _rows(question: schemas.QuestionIn, raw: Answer | None) -> list[_Row]:
    """One question's answer as rows to store; ValueError with the reason when it does not fit."""
    if raw is None or raw == [] or (isinstance(raw, str) and not raw.strip()):
        if question.required:
            raise ValueError(_("This question must be answered."))
        return []
    key = question.key
    if question.kind == "multiple":
        picked = [raw] if isinstance(raw, str) else raw
        if not isinstance(picked, list):
            raise ValueError(_("Pick options of this question."))
        _known_options(question, picked)
        if len(set(picked)) != len(picked):
            raise ValueError(_("Pick each option only once."))
        if question.max_choices is not None and len(picked) > question.max_choices:
            raise ValueError(_("Pick at most %(count)s options.", count=question.max_choices))
        return [_Row(key, option=option) for option in picked]
    if isinstance(raw, list):
        raise ValueError(_("Give one answer."))
    if question.kind == "single":
        if not isinstance(raw, str):
            raise ValueError(_("Pick options of this question."))
        _known_options(question, [raw])
        return [_Row(key, option=raw)]
    if question.kind == "scale":
        if (
            isinstance(raw, bool)
            or not isinstance(raw, int)
            or not question.scale_min <= raw <= question.scale_max
        ):
            raise ValueError(
                _(
                    "Give a whole number from %(low)s to %(high)s.",
                    low=question.scale_min,
                    high=question.scale_max,
                )
            )
        return [_Row(key, number=raw)]
    if not isinstance(raw, str):
        raise ValueError(_("Write the answer as text."))
    text = raw.strip()
    if len(text) > TEXT_LIMIT:
        raise ValueError(_("At most %(count)s characters.", count=TEXT_LIMIT))
    if "\x00" in text:
        raise ValueError(_("Remove the NUL characters."))
    return [_Row(key, text=text)]


def _known_options(question: schemas.QuestionIn, picked: Iterable[Any]) -> None:
    allowed = {option.key for option in question.options}
    unknown = [str(key) for key in picked if key not in allowed]
    if unknown:
        raise ValueError(_("Not one of the choices: %(keys)s", keys=", ".join(unknown)[:300]))


def _result(
    session: Session,
    survey: Survey,
    question: schemas.QuestionIn,
    counts: dict[tuple[str, str | int], int],
    answered: int,
    organiser: bool,
) -> schemas.QuestionResult:
    result = schemas.QuestionResult(
        key=question.key, kind=question.kind, text=question.text, answered=answered
    )
    if question.kind in ("single", "multiple"):
        result.options = {
            option.key: counts.get((question.key, option.key), 0) for option in question.options
        }
    elif question.kind == "scale":
        values = range(question.scale_min, question.scale_max + 1)
        distribution = {value: counts.get((question.key, value), 0) for value in values}
        total = sum(distribution.values())
        result.distribution = {str(value): count for value, count in distribution.items()}
        if total:
            result.average = round(sum(value * count for value, count in distribution.items()) / total, 2)
    elif organiser:
        result.texts = list(
            session.scalars(
                select(SurveyAnswer.text)
                .where(
                    SurveyAnswer.survey_id == survey.id,
                    SurveyAnswer.question == question.key,
                    SurveyAnswer.text.is_not(None),
                )
                .order_by(SurveyAnswer.id.desc())
                .limit(LATEST_TEXTS)
            )
        )
    return result
