"""Identity JSON API under /api/v1/identity: thin routes that parse, call the service, shape the output."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, Response, UploadFile, status
from sqlalchemy import select

from cityhub.domains.identity import schemas
from cityhub.domains.identity.dependencies import (
    CurrentPrincipal,
    identity_settings,
    require_permission,
)
from cityhub.domains.identity.models import (
    Consent,
    Notification,
    NotificationPreference,
    NotificationWebhook,
    Organization,
    OrgUnit,
    Person,
    RoleAssignment,
)
from cityhub.domains.identity.service import accounts, apikeys, card, consent, notifications, orgs, people
from cityhub.domains.identity.service.access import Principal, require
from cityhub.kernel import audit
from cityhub.kernel.errors import NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.pagination import Page, Paging, fetch_page, page_of
from cityhub.kernel.qr import qr_svg
from cityhub.kernel.ratelimit import enforce
from cityhub.kernel.security import public_key_pem
from cityhub.kernel.web import (
    AppSettings,
    DbSession,
    DbWriteSession,
    PublicRateLimited,
    client_address,
    get_database,
)

router = APIRouter()


# --- tokens --------------------------------------------------------------------------------------------


@router.post(
    "/token", response_model=schemas.TokenOut, summary="OAuth2 token endpoint (password, refresh_token)"
)
def token(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    grant_type: Annotated[str, Form()] = "password",
    username: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
    refresh_token: Annotated[str | None, Form()] = None,
) -> schemas.TokenOut:
    enforce(settings.rate_limits.storage_uri, settings.rate_limits.login, "login", client_address(request))
    identity = identity_settings()
    if grant_type == "password":
        if not username or not password:
            raise ValidationProblem(_("Give a username and a password."), field="username")
        account = accounts.authenticate(get_database(request), identity, username, password)
        pair = accounts.issue_tokens(session, settings.secret_key, identity, account)
    elif grant_type == "refresh_token":
        if not refresh_token:
            raise ValidationProblem(_("Give the refresh token."), field="refresh_token")
        pair = accounts.refresh_tokens(get_database(request), settings.secret_key, identity, refresh_token)
    else:
        raise ValidationProblem(
            _("Unsupported grant type %(grant)s.", grant=grant_type),
            field="grant_type",
            slug="unsupported-grant-type",
        )
    return schemas.TokenOut(
        access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
    )


@router.post(
    "/token/revoke", status_code=status.HTTP_204_NO_CONTENT, summary="Log out: revoke a refresh token"
)
def revoke_token(body: schemas.RefreshIn, session: DbSession, settings: AppSettings) -> Response:
    accounts.revoke_refresh_token(session, settings.secret_key, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- me ------------------------------------------------------------------------------------------------


@router.get("/me", response_model=schemas.MeOut, summary="Who am I: account, person, roles, permissions")
def me(principal: CurrentPrincipal, session: DbSession) -> schemas.MeOut:
    person = session.get(Person, principal.person_id) if principal.person_id else None
    return schemas.MeOut(
        account_id=principal.id,
        username=principal.name,
        person=schemas.PersonOut.model_validate(person) if person else None,
        roles=[
            schemas.GrantOut(role=g.role, org_unit_id=g.org_unit_id, organization_id=g.organization_id)
            for g in principal.grants
        ],
        permissions=sorted({code for grant in principal.grants for code in grant.permissions}),
    )


def _own_person_id(principal: Principal) -> int:
    if principal.person_id is None:
        raise NotFound(_("This caller is not a person."))
    return principal.person_id


@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT, summary="Change my password")
def change_my_password(
    request: Request,
    body: schemas.PasswordChangeIn,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: AppSettings,
) -> Response:
    """Ends every other session of the account: page sessions and refresh tokens are revoked."""
    enforce(settings.rate_limits.storage_uri, settings.rate_limits.login, "login", client_address(request))
    if principal.kind != "account":
        raise NotFound(_("This caller is not a person."))
    account = accounts.get_account(session, principal.id)
    accounts.change_password(session, account, body.current_password, body.new_password, principal.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me/household", response_model=schemas.HouseholdOut)
def my_household(principal: CurrentPrincipal, session: DbSession) -> schemas.HouseholdOut:
    found = people.household_of(session, _own_person_id(principal))
    if found is None:
        raise NotFound(_("You are not registered in a household."))
    household, members = found
    return schemas.HouseholdOut(
        household=schemas.OrgUnitOut.model_validate(household),
        members=[schemas.HouseholdMemberOut(person_id=p.id, name=p.name, relation=r) for p, r in members],
    )


@router.get("/me/consents", response_model=list[schemas.ConsentOut], summary="My consents, newest first")
def my_consents(principal: CurrentPrincipal, session: DbSession) -> list[Consent]:
    return consent.consent_history(session, _own_person_id(principal))


@router.post("/me/consents", response_model=schemas.ConsentOut, status_code=status.HTTP_201_CREATED)
def give_consent(body: schemas.ConsentIn, principal: CurrentPrincipal, session: DbSession) -> Consent:
    return consent.grant_consent(
        session, _own_person_id(principal), body.purpose, actor=principal.actor, scope=body.scope
    )


@router.delete("/me/consents/{purpose}", status_code=status.HTTP_204_NO_CONTENT)
def withdraw_consent(purpose: str, principal: CurrentPrincipal, session: DbSession) -> Response:
    if not consent.withdraw_consent(session, _own_person_id(principal), purpose, actor=principal.actor):
        raise NotFound(_("You have no active consent for %(purpose)s.", purpose=purpose))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- my notifications ----------------------------------------------------------------------------------

NotificationId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Topic = Annotated[str, Path(min_length=1, max_length=notifications.MAX_TOPIC)]


def _own_account_id(principal: Principal) -> int:
    if principal.kind != "account":
        raise NotFound(_("This caller is not a person."))
    return principal.id


@router.get(
    "/me/notifications",
    response_model=schemas.NotificationPageOut,
    summary="My notifications, newest first, with the unread count",
)
def my_notifications(
    principal: CurrentPrincipal,
    session: DbSession,
    paging: Paging,
    unread: Annotated[bool, Query(description="Only the unread ones.")] = False,
) -> schemas.NotificationPageOut:
    account_id = _own_account_id(principal)
    rows, total = fetch_page(session, notifications.inbox(account_id, unread_only=unread), paging)
    page = page_of(rows, total, paging, schemas.NotificationOut)
    unread_count = notifications.unread_count(session, account_id)
    return schemas.NotificationPageOut(**page.model_dump(), unread=unread_count)


@router.post("/me/notifications/read-all", response_model=schemas.ReadAllOut, summary="Mark all read")
def read_all_my_notifications(principal: CurrentPrincipal, session: DbSession) -> schemas.ReadAllOut:
    return schemas.ReadAllOut(marked=notifications.mark_all_read(session, _own_account_id(principal)))


@router.post(
    "/me/notifications/{notification_id}/read",
    response_model=schemas.NotificationOut,
    summary="Mark one of my notifications read",
)
def read_my_notification(
    notification_id: NotificationId, principal: CurrentPrincipal, session: DbSession
) -> Notification:
    return notifications.mark_read(session, _own_account_id(principal), notification_id)


@router.get(
    "/me/notification-preferences",
    response_model=list[schemas.NotificationPreferenceOut],
    summary="My channel choices by topic (no row: email and webhook on)",
)
def my_notification_preferences(
    principal: CurrentPrincipal, session: DbSession
) -> list[NotificationPreference]:
    return notifications.preferences(session, _own_account_id(principal))


@router.put(
    "/me/notification-preferences/{topic}",
    response_model=schemas.NotificationPreferenceOut,
    summary="Choose the channels of a topic, a family (services.*) or all topics (*)",
)
def set_my_notification_preference(
    topic: Topic, body: schemas.NotificationPreferenceIn, principal: CurrentPrincipal, session: DbSession
) -> NotificationPreference:
    account_id = _own_account_id(principal)
    return notifications.set_preference(session, account_id, topic, email=body.email, webhook=body.webhook)


@router.delete(
    "/me/notification-preferences/{topic}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Forget a topic's choice (the wider topics' choice applies again)",
)
def remove_my_notification_preference(
    topic: Topic, principal: CurrentPrincipal, session: DbSession
) -> Response:
    if not notifications.remove_preference(session, _own_account_id(principal), topic):
        raise NotFound(_("You have made no choice for %(topic)s.", topic=topic))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me/webhook", response_model=schemas.WebhookOut, summary="Where my notifications are POSTed")
def my_webhook(principal: CurrentPrincipal, session: DbSession) -> NotificationWebhook:
    hook = notifications.get_webhook(session, _own_account_id(principal))
    if hook is None:
        raise NotFound(_("You have no webhook."))
    return hook


@router.put(
    "/me/webhook",
    response_model=schemas.WebhookCreatedOut,
    summary="POST my notifications to this URL; answers a new signing secret, shown once",
)
def set_my_webhook(
    body: schemas.WebhookIn, principal: CurrentPrincipal, session: DbSession, settings: AppSettings
) -> schemas.WebhookCreatedOut:
    hook, secret = notifications.set_webhook(
        session,
        _own_account_id(principal),
        body.url,
        actor=principal.actor,
        blocked_networks=settings.outbound_blocked_networks,
    )
    return schemas.WebhookCreatedOut(url=hook.url, created_at=hook.created_at, secret=secret)


@router.delete("/me/webhook", status_code=status.HTTP_204_NO_CONTENT, summary="Stop webhook deliveries")
def remove_my_webhook(principal: CurrentPrincipal, session: DbSession) -> Response:
    if not notifications.remove_webhook(session, _own_account_id(principal), actor=principal.actor):
        raise NotFound(_("You have no webhook."))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- citizen card --------------------------------------------------------------------------------------


@router.get("/card", response_model=schemas.CardOut, summary="A fresh signed QR token for my citizen card")
def my_card(principal: CurrentPrincipal, session: DbSession, settings: AppSettings) -> schemas.CardOut:
    person = people.get_person(session, _own_person_id(principal))
    identity = identity_settings()
    issued = card.issue_card(person, card.signing_key(settings, identity), identity.card_token_seconds)
    return schemas.CardOut(token=issued.token, expires_at=issued.expires_at, qr_svg=qr_svg(issued.token))


@router.post("/card/revoke", status_code=status.HTTP_204_NO_CONTENT, summary="Invalidate all my card codes")
def revoke_my_cards(principal: CurrentPrincipal, session: DbSession) -> Response:
    person = people.get_person(session, _own_person_id(principal))
    card.revoke_cards(session, person, principal.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/card/verify", response_model=schemas.CardCheckOut, summary="Verify a scanned card code")
def verify_card(
    body: schemas.CardVerifyIn,
    session: DbSession,
    settings: AppSettings,
    principal: Annotated[Principal, Depends(require_permission("identity.card.verify"))],
) -> schemas.CardCheckOut:
    public_key = card.signing_key(settings, identity_settings()).public_key()
    check = card.verify_card(body.token, public_key, session)
    if check.person_id is not None:
        audit.record(
            session,
            actor=principal.actor,
            action="identity.card.verified",
            object_type="person",
            object_id=str(check.person_id),
            details={"reason": check.reason},
        )
    return schemas.CardCheckOut(**check.__dict__)


@router.get(
    "/card/public-key",
    summary="The Ed25519 public key (PEM) for verifying card codes offline",
    dependencies=[PublicRateLimited],
)
def card_public_key(settings: AppSettings) -> Response:
    key = card.signing_key(settings, identity_settings()).public_key()
    return Response(public_key_pem(key), media_type="application/x-pem-file")


# --- org units -----------------------------------------------------------------------------------------


@router.get("/org-units", response_model=Page[schemas.OrgUnitOut], summary="Org units I may see")
def list_org_units(
    session: DbSession,
    paging: Paging,
    principal: Annotated[Principal, Depends(require_permission("identity.orgs.read"))],
    parent_id: int | None = None,
    kind: str | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
) -> Page[schemas.OrgUnitOut]:
    statement = orgs.search_units(principal.scopes("identity.orgs.read"), q)
    if parent_id is not None:
        statement = statement.where(OrgUnit.parent_id == parent_id)
    if kind:
        statement = statement.where(OrgUnit.kind == kind)
    rows, total = fetch_page(session, statement.order_by(OrgUnit.path), paging)
    return page_of(rows, total, paging, schemas.OrgUnitOut)


def _visible_unit(session: DbSession, principal: Principal, unit_id: int, permission: str) -> OrgUnit:
    unit = orgs.get_unit(session, unit_id)
    require(principal, permission, unit.path)
    return unit


@router.get("/org-units/{unit_id}", response_model=schemas.OrgUnitDetailOut)
def get_org_unit(
    unit_id: int,
    session: DbSession,
    principal: Annotated[Principal, Depends(require_permission("identity.orgs.read"))],
) -> OrgUnit:
    return _visible_unit(session, principal, unit_id, "identity.orgs.read")


@router.post("/org-units", response_model=schemas.OrgUnitDetailOut, status_code=status.HTTP_201_CREATED)
def create_org_unit(
    body: schemas.OrgUnitIn,
    session: DbSession,
    principal: Annotated[Principal, Depends(require_permission("identity.orgs.manage"))],
) -> OrgUnit:
    return orgs.add_unit(session, principal, orgs.OrgUnitInput(**body.model_dump()))


@router.post("/org-units/import", summary="Import org units from CSV or GeoJSON (all or nothing)")
def import_org_units(
    session: DbSession,
    principal: Annotated[Principal, Depends(require_permission("identity.orgs.manage"))],
    file: Annotated[UploadFile, File()],
) -> dict[str, int]:
    content = file.file.read(orgs.MAX_IMPORT_BYTES + 1)
    created = orgs.import_file(session, principal, file.filename or "upload.csv", content)
    return {"created": created}


# --- people --------------------------------------------------------------------------------------------


@router.get("/people", response_model=Page[schemas.PersonOut], summary="People registered in my scope")
def list_people(
    session: DbWriteSession,
    paging: Paging,
    principal: Annotated[Principal, Depends(require_permission("identity.people.read"))],
    q: Annotated[str | None, Query(max_length=100)] = None,
) -> Page[schemas.PersonOut]:
    rows, total = people.list_people_audited(session, principal, q, paging)
    return page_of(rows, total, paging, schemas.PersonOut)


@router.get("/people/{person_id}", response_model=schemas.PersonOut, summary="One person (an audited read)")
def get_person(
    person_id: int,
    session: DbWriteSession,
    principal: Annotated[Principal, Depends(require_permission("identity.people.read"))],
    purpose: Annotated[str, Query(min_length=2, max_length=200, description="Why you read this record.")] = (
        "administration"
    ),
) -> Person:
    return people.read_person_audited(session, principal, person_id, purpose)


@router.post("/people", response_model=schemas.PersonOut, status_code=status.HTTP_201_CREATED)
def create_person(
    body: schemas.PersonIn,
    session: DbSession,
    principal: Annotated[Principal, Depends(require_permission("identity.people.manage"))],
) -> Person:
    household = None
    if body.household_id is not None:
        household = _visible_unit(session, principal, body.household_id, "identity.people.manage")
    else:
        require(principal, "identity.people.manage", orgs.root_path(session))
    data = people.PersonInput(
        **body.model_dump(exclude={"household_id", "relation"}),
        home_unit_id=household.id if household else None,
    )
    person = people.create_person(session, data, identity_settings().id_number_key)
    if household is not None:
        people.add_to_household(session, household, person, body.relation)
    audit.record(
        session,
        actor=principal.actor,
        action="identity.person.created",
        object_type="person",
        object_id=str(person.id),
    )
    return person


@router.post(
    "/people/{person_id}/family-links",
    status_code=status.HTTP_201_CREATED,
    summary="Link a guardian, carer or emergency contact to a person",
)
def link_family(
    person_id: int,
    body: schemas.FamilyLinkIn,
    session: DbSession,
    principal: Annotated[Principal, Depends(require_permission("identity.people.manage"))],
) -> dict[str, int]:
    dependant = people.get_person(session, person_id)
    guardian = people.get_person(session, body.guardian_id)
    link = people.link_family_audited(session, principal, guardian, dependant, body.kind)
    return {"id": link.id}


# --- organisations -------------------------------------------------------------------------------------


@router.get(
    "/organizations",
    response_model=Page[schemas.OrganizationOut],
    summary="Departments, merchants, clinics, care providers and the operator in my scope",
)
def list_organizations(
    session: DbSession,
    paging: Paging,
    principal: Annotated[Principal, Depends(require_permission("identity.orgs.read"))],
    kind: str | None = None,
) -> Page[schemas.OrganizationOut]:
    scope_units = orgs.unit_ids_in_scope(principal.scopes("identity.orgs.read"))
    statement = select(Organization).where(Organization.org_unit_id.in_(scope_units))
    if kind:
        statement = statement.where(Organization.kind == kind)
    rows, total = fetch_page(session, statement.order_by(Organization.id), paging)
    return page_of(rows, total, paging, schemas.OrganizationOut)


@router.post("/organizations", response_model=schemas.OrganizationOut, status_code=status.HTTP_201_CREATED)
def create_organization(
    body: schemas.OrganizationIn,
    session: DbSession,
    principal: Annotated[Principal, Depends(require_permission("identity.orgs.manage"))],
) -> Organization:
    unit = orgs.get_unit(session, body.org_unit_id)
    return orgs.create_organization(session, principal, body.kind, body.code, body.name, unit, body.name_en)


# --- roles ---------------------------------------------------------------------------------------------


@router.get("/role-assignments", response_model=list[schemas.RoleAssignmentOut])
def list_role_assignments(
    account_id: int,
    session: DbSession,
    principal: Annotated[Principal, Depends(require_permission("identity.roles.manage"))],
) -> list[RoleAssignment]:
    accounts.get_account(session, account_id)
    scopes = principal.scopes("identity.roles.manage")
    return [assignment for assignment, _unit in accounts.assignments_in_scope(session, account_id, scopes)]


@router.post(
    "/role-assignments", response_model=schemas.RoleAssignmentOut, status_code=status.HTTP_201_CREATED
)
def grant_role(
    body: schemas.RoleAssignmentIn,
    session: DbSession,
    principal: Annotated[Principal, Depends(require_permission("identity.roles.manage"))],
) -> RoleAssignment:
    account = accounts.get_account(session, body.account_id)
    unit = orgs.get_unit(session, body.org_unit_id)
    return accounts.grant_role(session, principal, account, body.role, unit, body.organization_id)


@router.delete("/role-assignments/{assignment_id}", status_code=status.HTTP_204_NO_CONTENT)
def withdraw_role(
    assignment_id: int,
    session: DbSession,
    principal: Annotated[Principal, Depends(require_permission("identity.roles.manage"))],
) -> Response:
    accounts.withdraw_role(session, principal, assignment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- API keys ------------------------------------------------------------------------------------------


@router.get("/api-keys", response_model=Page[schemas.ApiKeyOut])
def list_api_keys(
    session: DbSession,
    paging: Paging,
    principal: Annotated[Principal, Depends(require_permission("identity.apikeys.manage"))],
) -> Page[schemas.ApiKeyOut]:
    statement = apikeys.keys_in_scope(principal.scopes("identity.apikeys.manage"))
    rows, total = fetch_page(session, statement, paging)
    return page_of(rows, total, paging, schemas.ApiKeyOut)


@router.post("/api-keys", response_model=schemas.ApiKeyCreatedOut, status_code=status.HTTP_201_CREATED)
def create_api_key(
    body: schemas.ApiKeyIn,
    session: DbSession,
    principal: Annotated[Principal, Depends(require_permission("identity.apikeys.manage"))],
) -> schemas.ApiKeyCreatedOut:
    unit = orgs.get_unit(session, body.org_unit_id)
    key, secret = apikeys.create_key(
        session,
        principal,
        name=body.name,
        permissions=body.permissions,
        org_unit=unit,
        organization_id=body.organization_id,
        expires_at=body.expires_at,
    )
    return schemas.ApiKeyCreatedOut(**schemas.ApiKeyOut.model_validate(key).model_dump(), key=secret)


@router.delete("/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_api_key(
    key_id: int,
    session: DbSession,
    principal: Annotated[Principal, Depends(require_permission("identity.apikeys.manage"))],
) -> Response:
    apikeys.revoke_key(session, principal, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
