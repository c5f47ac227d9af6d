"""The sandbox payment provider: signed checkout links, and signed payment and refund callbacks queued to the
job the domain named, which only the provider's key can produce and which never pass for one another."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from cityhub.kernel.db import Database
from cityhub.kernel.models import Job
from cityhub.kernel.payments import Checkout, InvalidCallback, Refund, SandboxProvider

SECRET = "a-secret-key-of-the-platform-for-these-tests"
CHECKOUT = Checkout("G0001", 2_990, "双人火锅套餐", "/market/deals/1", "test.payment")
REFUND = Refund("R0001", "SBX123", 2_990, "test.refund")


def queued(database: Database, job: str) -> tuple[bytes, str]:
    """The one callback queued to ``job``: its body and signature."""
    with database.reading() as session:
        payload = session.scalars(select(Job.payload).where(Job.name == job)).one()
    return payload["body"].encode(), payload["signature"]


def test_a_checkout_link_carries_the_order_and_cannot_be_forged() -> None:
    provider = SandboxProvider(SECRET)
    url = provider.checkout_url(CHECKOUT)
    token = url.removeprefix("/payments/sandbox/")
    assert provider.open_checkout(token) == CHECKOUT
    with pytest.raises(InvalidCallback) as refused:
        SandboxProvider("another-secret-key-of-some-length-000").open_checkout(token)
    assert refused.value.status == 404


def test_the_payers_answer_is_a_signed_callback_to_the_named_job(database: Database) -> None:
    provider = SandboxProvider(SECRET)
    with database.unit_of_work() as session:
        provider.answer(session, CHECKOUT, succeeded=True)
    body, signature = queued(database, "test.payment")
    settlement = provider.verify(body, signature)
    assert (settlement.reference, settlement.amount_cents, settlement.succeeded) == ("G0001", 2_990, True)
    assert settlement.transaction.startswith("SBX")
    with pytest.raises(InvalidCallback):
        provider.verify(body.replace(b"2990", b"1"), signature)


def test_a_refund_is_a_signed_callback_naming_the_payment_it_gives_back(database: Database) -> None:
    provider = SandboxProvider(SECRET)
    with database.unit_of_work() as session:
        provider.refund(session, REFUND)
    body, signature = queued(database, "test.refund")
    refunded = provider.verify_refund(body, signature)
    assert (refunded.reference, refunded.payment_transaction, refunded.amount_cents) == (
        "R0001",
        "SBX123",
        2_990,
    )
    assert refunded.succeeded and refunded.transaction.startswith("SBR")
    with pytest.raises(InvalidCallback):  # signed by someone else
        SandboxProvider("another-secret-key-of-some-length-000").verify_refund(body, signature)
    with pytest.raises(InvalidCallback):  # a refund is no payment
        provider.verify(body, signature)


def test_a_payment_callback_does_not_pass_for_a_refund() -> None:
    provider = SandboxProvider(SECRET)
    body = json.dumps({"reference": "G0001", "transaction": "SBX1", "amount_cents": 2_990, "succeeded": True})
    payment = body.encode()
    assert provider.verify(payment, provider.sign(payment)).reference == "G0001"  # an older body, no kind
    with pytest.raises(InvalidCallback):
        provider.verify_refund(payment, provider.sign(payment))
