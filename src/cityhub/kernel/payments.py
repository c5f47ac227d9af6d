"""Payment providers behind one interface, and the sandbox provider that stands in for a real one.

A domain that takes money keeps its own order (our ``reference``), sends the payer to the provider's
checkout address, and settles the order when the provider's *signed* callback arrives — never on the
payer's word. Callbacks may come more than once and out of order; settling must be idempotent (the
domain's conditional ``UPDATE ... WHERE status = 'pending'`` does that). Giving money back works the same
way: the domain asks for a refund of a payment's transaction under a refund number of its own, and settles
it when the provider's signed refund callback arrives.

Real providers (WeChat Pay, Alipay, UnionPay) call back over HTTP. The sandbox provider has a checkout page
of its own (``/payments/sandbox/{token}``, served by the web layer) and delivers its signed callbacks
through the job queue to the job the domain named in the checkout (or the refund), so the demo city pays
offline and a test can replay a callback. Its signing key is derived from the platform secret; it is
refused in production unless ``CITYHUB_PAYMENTS__SANDBOX=true`` says the operator knows no money moves.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeVar

from itsdangerous import BadSignature, URLSafeSerializer
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.orm import Session

from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import Problem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.jobs import enqueue
from cityhub.kernel.settings import Settings

SANDBOX = "sandbox"
SANDBOX_PATH = "/payments/sandbox/"


class InvalidCallback(Problem):
    status = 400
    slug = "invalid-payment-callback"


class NoPaymentProvider(Problem):
    status = 503
    slug = "payments-unavailable"


@dataclass(frozen=True)
class Checkout:
    """What the payer is asked to pay for, and where the answer goes."""

    reference: str  # the domain's own order number
    amount_cents: int
    description: str
    return_path: str  # a path of our site the payer comes back to
    callback_job: str  # the job that receives the sandbox's signed callback


@dataclass(frozen=True)
class Refund:
    """Money to give back from a payment the provider settled, and where the answer goes."""

    reference: str  # the domain's own refund number
    payment_transaction: str  # the provider's transaction of the payment refunded
    amount_cents: int
    callback_job: str  # the job that receives the sandbox's signed refund callback


class Settlement(BaseModel):
    """A provider's verified word on one order."""

    # A refund callback is signed with the same key: its kind keeps it from passing for a payment's.
    kind: Literal["payment"] = "payment"
    reference: str = Field(min_length=1, max_length=40)
    transaction: str = Field(min_length=1, max_length=64)
    amount_cents: int = Field(ge=0)
    succeeded: bool


class RefundSettlement(BaseModel):
    """A provider's verified word on one refund."""

    kind: Literal["refund"]
    reference: str = Field(min_length=1, max_length=40)
    transaction: str = Field(min_length=1, max_length=64)  # the refund's own transaction
    payment_transaction: str = Field(min_length=1, max_length=64)
    amount_cents: int = Field(ge=0)
    succeeded: bool


Answer = TypeVar("Answer", Settlement, RefundSettlement)


class SandboxProvider:
    """An in-process provider with a checkout page and HMAC-SHA256-signed callbacks."""

    name = SANDBOX

    def __init__(self, secret_key: str) -> None:
        self._key = hmac.new(secret_key.encode(), b"cityhub.payments.sandbox", hashlib.sha256).digest()
        self._tokens = URLSafeSerializer(secret_key, salt="cityhub.payments.sandbox.checkout")

    def checkout_url(self, checkout: Checkout) -> str:
        return SANDBOX_PATH + self._tokens.dumps(asdict(checkout))

    def open_checkout(self, token: str) -> Checkout:
        """The checkout a token of :meth:`checkout_url` describes; a forged or garbled one is refused."""
        try:
            fields: dict[str, Any] = self._tokens.loads(token)
            return Checkout(**fields)
        except (BadSignature, TypeError) as exc:
            raise InvalidCallback(_("This payment link is not valid."), status=404) from exc

    def sign(self, body: bytes) -> str:
        return hmac.new(self._key, body, hashlib.sha256).hexdigest()

    def answer(self, session: Session, checkout: Checkout, succeeded: bool) -> None:
        """The payer paid (or gave up): queue the signed callback, as a real provider would send it."""
        self._call_back(
            session,
            checkout.callback_job,
            {
                "kind": "payment",
                "reference": checkout.reference,
                "transaction": "SBX" + secrets.token_hex(12),
                "amount_cents": checkout.amount_cents,
                "succeeded": succeeded,
            },
        )

    def refund(self, session: Session, refund: Refund) -> None:
        """Give a payment's money back: the sandbox always can, so it queues its signed refund callback at
        once (a real provider answers later, and may refuse)."""
        self._call_back(
            session,
            refund.callback_job,
            {
                "kind": "refund",
                "reference": refund.reference,
                "transaction": "SBR" + secrets.token_hex(12),
                "payment_transaction": refund.payment_transaction,
                "amount_cents": refund.amount_cents,
                "succeeded": True,
            },
        )

    def _call_back(self, session: Session, job: str, fields: dict[str, Any]) -> None:
        body = json.dumps({**fields, "at": utcnow().isoformat()}).encode()
        enqueue(session, job, {"body": body.decode(), "signature": self.sign(body)})

    def verify(self, body: bytes, signature: str) -> Settlement:
        """The settlement a payment callback states, once its signature is checked."""
        return self._verified(Settlement, body, signature)

    def verify_refund(self, body: bytes, signature: str) -> RefundSettlement:
        """The settlement a refund callback states, once its signature is checked."""
        return self._verified(RefundSettlement, body, signature)

    def _verified(self, model: type[Answer], body: bytes, signature: str) -> Answer:
        if not hmac.compare_digest(self.sign(body), signature):
            raise InvalidCallback(_("The payment callback is not signed by the provider."))
        try:
            return model.model_validate_json(body)
        except ValidationError as exc:
            raise InvalidCallback(_("The payment callback is malformed.")) from exc


def payment_provider(settings: Settings) -> SandboxProvider:
    """The provider payments go through; only the sandbox exists so far."""
    if not settings.payments_sandbox_enabled:
        raise NoPaymentProvider(_("Online payment is not available on this platform yet."))
    return SandboxProvider(settings.secret_key)
