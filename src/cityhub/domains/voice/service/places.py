"""Where participation happens: a community named by its org-unit code in a proposal or a survey."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cityhub.domains.identity import get_unit_by_code
from cityhub.kernel.errors import NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _


def community_id(session: Session, code: str) -> int:
    """The org unit's id; an unknown code is a bad ``community`` field (422), not a missing page."""
    try:
        return get_unit_by_code(session, code).id
    except NotFound as exc:
        raise ValidationProblem(
            _("There is no community with the code %(code)s.", code=code), field="community"
        ) from exc
