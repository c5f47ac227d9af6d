"""Identity & access: the org-unit tree, people, accounts, scoped roles, API keys, consent, citizen card."""

from __future__ import annotations

from cityhub.domains.identity.settings import IdentitySettings
from cityhub.kernel.domain import Domain, Permission, Role, Tile
from cityhub.kernel.i18n import lazy_gettext as _l

STAFF = ("community_worker", "department_staff", "clinic_staff", "operator")

MANIFEST = Domain(
    name="identity",
    title=_l("Identity and access"),
    api="cityhub.domains.identity.api:router",
    pages="cityhub.domains.identity.views:router",
    cli=(
        "cityhub.domains.identity.cli:user_app",
        "cityhub.domains.identity.cli:apikey_app",
        "cityhub.domains.identity.cli:orgs_app",
        "cityhub.domains.identity.cli:card_app",
    ),
    models="cityhub.domains.identity.models",
    demo_seeder="cityhub.domains.identity.demo:seed",
    settings=IdentitySettings,
    job_handlers={
        "identity.notifications.email": "cityhub.domains.identity.jobs:send_email",
        "identity.notifications.webhook": "cityhub.domains.identity.jobs:send_webhook",
    },
    roles=(
        Role("resident", _l("Resident")),
        Role("community_worker", _l("Community worker")),
        Role("department_staff", _l("Department staff")),
        Role("merchant_owner", _l("Merchant owner")),
        Role("merchant_clerk", _l("Merchant clerk")),
        Role("clinic_staff", _l("Clinic staff")),
        Role("carer", _l("Carer")),
        Role("operator", _l("Platform operator")),
    ),
    permissions=(
        Permission("identity.orgs.read", _l("See org units"), STAFF),
        Permission("identity.orgs.manage", _l("Create, edit and import org units"), ("operator",)),
        Permission("identity.people.read", _l("See people and households"), ("community_worker", "operator")),
        Permission(
            "identity.people.manage", _l("Register and edit people"), ("community_worker", "operator")
        ),
        Permission("identity.roles.manage", _l("Grant and withdraw roles"), ("operator",)),
        Permission("identity.apikeys.manage", _l("Create and revoke API keys"), ("operator",)),
        Permission(
            "identity.card.verify",
            _l("Verify citizen cards"),
            (*STAFF, "merchant_owner", "merchant_clerk", "carer"),
        ),
        Permission("identity.audit.read", _l("Read the audit trail"), ("operator",)),
    ),
    tiles=(
        Tile("card", _l("My citizen card"), "/me/card", "card", order=1),
        Tile("household", _l("My household"), "/me/household", "home", order=2),
        Tile("inbox", _l("My messages"), "/me/inbox", "bell", order=4),
        Tile("consents", _l("My consents"), "/me/consents", "shield", order=90),
        Tile(
            "admin", _l("Administration"), "/admin", "settings", permission="identity.orgs.read", console=True
        ),
    ),
)
