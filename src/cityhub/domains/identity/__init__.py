"""Identity & access — the public face other domains may import.

Use these to authenticate callers and check permissions in routes (``SignedIn``: a page's logged-in user;
anonymous visitors are sent to the login page), to ask for consent, to find the org unit of a location, to
resolve people and households by id, to notify an account (``notify`` with a ``Notice``), and to learn who
a scanned citizen card code names (``card_holder``).
"""

from cityhub.domains.identity.dependencies import (
    CurrentPrincipal,
    api_key_principal,
    cached_principal,
    current_principal,
    optional_principal,
    page_principal,
    require_permission,
)
from cityhub.domains.identity.service.access import Grant, Principal, can_citywide, require, require_citywide
from cityhub.domains.identity.service.accounts import (
    account_id_of,
    accounts_holding,
    person_of_account,
    remember_locale,
    usernames_of,
)
from cityhub.domains.identity.service.apikeys import principal_from_api_key
from cityhub.domains.identity.service.card import card_holder
from cityhub.domains.identity.service.consent import (
    ConsentChanged,
    consenting_people,
    grant_consent,
    has_consent,
    reachable_people,
    withdraw_consent,
)
from cityhub.domains.identity.service.delegation import (
    KeyInfo,
    StaffMember,
    give_organization_role,
    issue_organization_key,
    open_organization,
    organization_keys,
    organization_staff,
    revoke_organization_key,
    take_organization_role,
)
from cityhub.domains.identity.service.notifications import Notice, notify
from cityhub.domains.identity.service.orgs import (
    get_organization,
    get_organization_by_code,
    get_unit,
    get_unit_by_code,
    organizations_by_id,
    system_principal,
    unit_containing,
    unit_locator,
    units_in_scope,
)
from cityhub.domains.identity.service.people import (
    account_holders,
    dependants_of,
    get_person,
    guardians_of,
    household_of,
    id_number_digest,
    mask_name,
)
from cityhub.domains.identity.views import PageUser, SignedIn, page_user, signed_in

__all__ = [
    "ConsentChanged",
    "CurrentPrincipal",
    "Grant",
    "KeyInfo",
    "Notice",
    "PageUser",
    "Principal",
    "SignedIn",
    "StaffMember",
    "account_holders",
    "account_id_of",
    "accounts_holding",
    "api_key_principal",
    "cached_principal",
    "can_citywide",
    "card_holder",
    "consenting_people",
    "current_principal",
    "dependants_of",
    "get_organization",
    "get_organization_by_code",
    "get_person",
    "get_unit",
    "get_unit_by_code",
    "give_organization_role",
    "grant_consent",
    "guardians_of",
    "has_consent",
    "household_of",
    "id_number_digest",
    "issue_organization_key",
    "mask_name",
    "notify",
    "open_organization",
    "optional_principal",
    "organization_keys",
    "organization_staff",
    "organizations_by_id",
    "page_principal",
    "page_user",
    "person_of_account",
    "principal_from_api_key",
    "reachable_people",
    "remember_locale",
    "require",
    "require_citywide",
    "require_permission",
    "revoke_organization_key",
    "signed_in",
    "system_principal",
    "take_organization_role",
    "unit_containing",
    "unit_locator",
    "units_in_scope",
    "usernames_of",
    "withdraw_consent",
]
