"""Voice tables: the 12345 category tree, tickets, their timeline, followers and photos, extension requests,
the assessment's rollup of closed tickets, the knowledge base and the emergency duty roster; participation:
city projects with their ratings and milestones, proposals with supports, comments and moderation flags,
surveys and their answers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cityhub.kernel.db import Base, UTCDateTime, utcnow

TICKET_TYPES = ("consultation", "help", "suggestion", "complaint", "report")
CHANNELS = ("app", "phone", "open311", "transfer")  # transfer: handed over by another platform in a batch
# received: no department yet (dispatched by hand); dispatched: waiting for the department to sign;
# handling: signed (or reopened); replied: waiting for the callback; closed; merged into another ticket.
TICKET_STATUSES = ("received", "dispatched", "handling", "replied", "closed", "merged")
OPEN_STATUSES = ("received", "dispatched", "handling")


class Category(Base):
    """A node of the classification tree (codes in the style of GB/T 39666, e.g. 03.02.01), with the
    department (identity organisation) that handles its tickets."""

    __tablename__ = "voice_category"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("voice_category.id"))
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    organization_id: Mapped[int | None] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)
    description: Mapped[str] = mapped_column(Text, default="")
    # gas smell, fire risk, flooding…: tickets take the emergency fast path (on-duty alarm, live board)
    emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    # Open311 attribute definitions asked for with a report of this kind (schemas.AttributeIn)
    attributes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class Ticket(Base):
    """A citizen's case: what, where, who handles it, by when, and how it ended."""

    __tablename__ = "voice_ticket"
    __table_args__ = (
        Index("ix_voice_ticket_queue", "organization_id", "status", "deadline_at"),
        Index("ix_voice_ticket_due", "status", "deadline_at"),
        Index("ix_voice_ticket_reporter", "account_id", "created_at"),
        Index("ix_voice_ticket_created", "created_at"),
        Index("ix_voice_ticket_nearby", "cell", "category_id", "created_at"),
        Index("ix_voice_ticket_alarm", "emergency", "acknowledged_at"),
        # the assessment's live pass over the tickets not yet closed (service/assessment.py), by status
        # and time received, every column it counts read from the index alone; also the rollup's rebuild
        # (service/rollup.py), over the closed ones
        Index(
            "ix_voice_ticket_assessment_live",
            "status",
            "created_at",
            "organization_id",
            "category_id",
            "type",
            "org_unit_id",
            "sign_due_at",
            "signed_at",
            "deadline_at",
            "replied_at",
            "satisfaction",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    type: Mapped[str] = mapped_column(String(16))
    category_id: Mapped[int] = mapped_column(ForeignKey("voice_category.id"), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    account_id: Mapped[int | None] = mapped_column(Integer)  # the reporter's account, when they have one
    reporter_name: Mapped[str] = mapped_column(String(100), default="")
    reporter_phone: Mapped[str] = mapped_column(String(32), default="")
    description: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(String(400), default="")
    lon: Mapped[float | None] = mapped_column(Float)
    lat: Mapped[float | None] = mapped_column(Float)
    cell: Mapped[str | None] = mapped_column(String(16))  # H3 cell of the location, for nearby duplicates
    org_unit_id: Mapped[int | None] = mapped_column(Integer)  # the community the location lies in
    organization_id: Mapped[int | None] = mapped_column(Integer)  # the handling department
    status: Mapped[str] = mapped_column(String(12))
    sign_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reply: Mapped[str] = mapped_column(Text, default="")
    callback_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reopened: Mapped[int] = mapped_column(Integer, default=0)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("voice_ticket.id"))
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # answers to Category.attributes
    media_url: Mapped[str] = mapped_column(String(1000), default="")  # a photo elsewhere (Open311)
    token: Mapped[str | None] = mapped_column(String(40), unique=True)  # Open311 request token
    # the sending platform's own id of a transferred ticket: a batch sent twice files each ticket once
    external_ref: Mapped[str | None] = mapped_column(String(100), unique=True)
    emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(60))  # who, by name, for the board
    alarm_escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ScoreRollup(Base):
    """The assessment's counts of the closed tickets received on a local day (the city's zone), per
    department, category and type (service/rollup.py): kept in the transaction that closes a ticket.
    ``organization_id`` 0 stands for no department: a NULL would never conflict in the key, so the
    counting upsert would add rows instead of adding up."""

    __tablename__ = "voice_assessment_rollup"
    __table_args__ = ({"sqlite_with_rowid": False},)  # rows kept in key order: a period is one range

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    organization_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    category_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(16), primary_key=True)
    # named as the fields of service.assessment.Scores, which both passes fill by name
    received: Mapped[int] = mapped_column(Integer)
    closed: Mapped[int] = mapped_column(Integer)
    sign_due: Mapped[int] = mapped_column(Integer)
    signed_in_time: Mapped[int] = mapped_column(Integer)
    judged: Mapped[int] = mapped_column(Integer)
    answered_in_time: Mapped[int] = mapped_column(Integer)
    due: Mapped[int] = mapped_column(Integer)
    callbacks: Mapped[int] = mapped_column(Integer)
    satisfied: Mapped[int] = mapped_column(Integer)


class CommunityRollup(Base):
    """The closed tickets received on a local day per community and department, for the heat map
    (service/rollup.py); tickets outside every community are not in it. ``organization_id`` 0: none."""

    __tablename__ = "voice_assessment_community_rollup"
    __table_args__ = ({"sqlite_with_rowid": False},)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    organization_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    closed: Mapped[int] = mapped_column(Integer)


class TicketEvent(Base):
    """One step of a ticket's timeline: who did what, when, from which status to which."""

    __tablename__ = "voice_ticket_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("voice_ticket.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(60))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(12))
    to_status: Mapped[str] = mapped_column(String(12))
    note: Mapped[str] = mapped_column(Text, default="")
    public: Mapped[bool] = mapped_column(default=True)  # shown to the reporter


class Follower(Base):
    """A resident who reported the same problem and chose to follow the existing ticket instead."""

    __tablename__ = "voice_follower"
    __table_args__ = (UniqueConstraint("ticket_id", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("voice_ticket.id"))
    account_id: Mapped[int] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Photo(Base):
    """A picture attached at intake; the bytes live under <var_dir>/uploads/voice/, named by hash."""

    __tablename__ = "voice_photo"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("voice_ticket.id"), index=True)
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Article(Base):
    """A knowledge-base answer the hotline gives to consultations (GB/T 44191-style 知识库)."""

    __tablename__ = "voice_article"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("voice_category.id"))
    published: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_by: Mapped[str] = mapped_column(String(60))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ArticleTerm(Base):
    """The search index of the knowledge base: each term of an article with the weight of where it occurs."""

    __tablename__ = "voice_article_term"

    term: Mapped[str] = mapped_column(String(64), primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("voice_article.id"), primary_key=True)
    weight: Mapped[int] = mapped_column(Integer)


class Duty(Base):
    """Who is on duty for emergencies, when: for a department (organization_id) or for the hotline (None)."""

    __tablename__ = "voice_duty"
    __table_args__ = (Index("ix_voice_duty_when", "organization_id", "starts_at", "ends_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int | None] = mapped_column(Integer)
    account_id: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Extension(Base):
    """A department's request for more working days, decided by the operator."""

    __tablename__ = "voice_extension"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("voice_ticket.id"), index=True)
    days: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending, approved, refused
    requested_by: Mapped[str] = mapped_column(String(60))
    decided_by: Mapped[str | None] = mapped_column(String(60))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Project(Base):
    """A city project residents may rate in public (a park renovation, a new bus line…)."""

    __tablename__ = "voice_project"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    organization_id: Mapped[int | None] = mapped_column(Integer)  # the department responsible
    # result tracking (Decidim's accountability): how far the project is, 0-100, moved by its milestones
    progress: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProjectRating(Base):
    """One person's rating of a project on the five-level scale; rating again replaces it."""

    __tablename__ = "voice_project_rating"
    __table_args__ = (UniqueConstraint("project_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("voice_project.id"), index=True)
    person_id: Mapped[int] = mapped_column(Integer)
    level: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    rated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Milestone(Base):
    """A planned step of a project; reaching it moves the project's progress to the step's percentage."""

    __tablename__ = "voice_milestone"
    __table_args__ = (Index("ix_voice_milestone_project", "project_id", "due_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("voice_project.id"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    due_on: Mapped[date] = mapped_column(Date)
    progress: Mapped[int] = mapped_column(Integer)  # the project's progress once this step is reached
    reached_on: Mapped[date | None] = mapped_column(Date)


PROPOSAL_STATES = ("open", "evaluating", "accepted", "rejected", "withdrawn")
FLAG_REASONS = ("spam", "offensive", "off_topic", "other")


class Moderated:
    """What moderation keeps on published content: residents' flags, the moderator's review, hiding."""

    flags: Mapped[int] = mapped_column(Integer, default=0)
    reviewed: Mapped[bool] = mapped_column(Boolean, default=True)  # False: flagged since the last review
    hidden_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Proposal(Moderated, Base):
    """A resident's proposal to the city: supports collected until a date, an official answer, and once
    accepted the project that carries it out (its progress and milestones are the proposal's result)."""

    __tablename__ = "voice_proposal"
    __table_args__ = (
        Index("ix_voice_proposal_state", "state", "supports"),
        Index("ix_voice_proposal_created", "created_at"),
        Index("ix_voice_proposal_review", "reviewed", "flags"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    author_account_id: Mapped[int] = mapped_column(Integer, index=True)
    author_person_id: Mapped[int] = mapped_column(Integer)
    author_name: Mapped[str] = mapped_column(String(100))  # masked (王*) as the public sees it
    org_unit_id: Mapped[int | None] = mapped_column(Integer)  # the community it concerns, when it has one
    state: Mapped[str] = mapped_column(String(12), default="open")
    supports: Mapped[int] = mapped_column(Integer, default=0)
    threshold: Mapped[int] = mapped_column(Integer)  # supports needed, fixed when the proposal is made
    supports_close_at: Mapped[datetime] = mapped_column(UTCDateTime)
    threshold_reached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answer: Mapped[str] = mapped_column(Text, default="")
    answered_by: Mapped[str | None] = mapped_column(String(60))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("voice_project.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Support(Base):
    """One person's support of a proposal."""

    __tablename__ = "voice_support"
    __table_args__ = (UniqueConstraint("proposal_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("voice_proposal.id"))
    person_id: Mapped[int] = mapped_column(Integer, index=True)
    account_id: Mapped[int] = mapped_column(Integer)  # whom to tell when the city answers
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Supporter(Base):
    """How many supports a person has given: the per-person cap is a conditional update of this counter,
    so concurrent supports from one person can never exceed it."""

    __tablename__ = "voice_supporter"

    person_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    supports: Mapped[int] = mapped_column(Integer, default=0)


class Comment(Moderated, Base):
    """A comment on a proposal; ``official`` marks the city's answers in the thread."""

    __tablename__ = "voice_comment"
    __table_args__ = (
        Index("ix_voice_comment_proposal", "proposal_id", "created_at"),
        Index("ix_voice_comment_review", "reviewed", "flags"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(ForeignKey("voice_proposal.id"))
    account_id: Mapped[int] = mapped_column(Integer)
    author_name: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    official: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Flag(Base):
    """A resident's report of a proposal or comment to the moderators; one per person and item."""

    __tablename__ = "voice_flag"
    __table_args__ = (UniqueConstraint("target", "target_id", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    target: Mapped[str] = mapped_column(String(10))  # proposal, comment
    target_id: Mapped[int] = mapped_column(Integer)
    account_id: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(10))
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


QUESTION_KINDS = ("single", "multiple", "scale", "text")


class Survey(Base):
    """A questionnaire residents answer once each, open between two moments, optionally for one org
    subtree (a community's residents)."""

    __tablename__ = "voice_survey"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # schemas.QuestionIn, in order
    opens_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closes_at: Mapped[datetime] = mapped_column(UTCDateTime)
    org_unit_id: Mapped[int | None] = mapped_column(Integer)
    results_public: Mapped[bool] = mapped_column(Boolean, default=True)
    responses: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SurveyResponse(Base):
    """That a person answered a survey: the unique pair is the once-per-person rule."""

    __tablename__ = "voice_survey_response"
    __table_args__ = (UniqueConstraint("survey_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("voice_survey.id"))
    person_id: Mapped[int] = mapped_column(Integer)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SurveyAnswer(Base):
    """One answer to one question: a chosen option (one row per option), a scale value or free text."""

    __tablename__ = "voice_survey_answer"
    __table_args__ = (Index("ix_voice_survey_answer_question", "survey_id", "question", "option"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("voice_survey_response.id"), index=True)
    survey_id: Mapped[int] = mapped_column(Integer)
    question: Mapped[str] = mapped_column(String(64))
    option: Mapped[str | None] = mapped_column(String(64))
    number: Mapped[int | None] = mapped_column(Integer)
    text: Mapped[str | None] = mapped_column(Text)
