"""The sandbox payment provider's checkout page: where a payer "pays" when no real provider is configured.

It plays the provider's part, so it lives beside the platform rather than in a domain: it shows what the
signed checkout link says, and on the payer's answer queues the provider's signed callback.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from cityhub.domains.identity import SignedIn
from cityhub.kernel.payments import payment_provider
from cityhub.kernel.web import AppSettings, CsrfChecked, DbSession
from cityhub.web.templating import render

router = APIRouter()


@router.get("/payments/sandbox/{token}")
def checkout_page(request: Request, _user: SignedIn, settings: AppSettings, token: str) -> Response:
    checkout = payment_provider(settings).open_checkout(token)
    return render(request, "sandbox_checkout.html", {"checkout": checkout, "token": token})


@router.post("/payments/sandbox/{token}", dependencies=[CsrfChecked])
def answer_checkout(
    _user: SignedIn,
    settings: AppSettings,
    session: DbSession,
    token: str,
    outcome: Annotated[str, Form(pattern="^(pay|decline)$")],
) -> Response:
    provider = payment_provider(settings)
    checkout = provider.open_checkout(token)
    provider.answer(session, checkout, succeeded=outcome == "pay")
    return RedirectResponse(checkout.return_path, status_code=303)
