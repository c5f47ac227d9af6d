"""Bills and their payment: departments and utilities issue bills, residents pay them through the payment
provider, and the provider's signed callback settles the payment — exactly once, however often it comes.

A payment is settled by one conditional ``UPDATE ... WHERE status <> 'succeeded'``, and its bill is marked
paid by another ``WHERE status = 'unpaid'``; a second successful payment of an already paid bill (two
checkouts paid in two tabs) is kept as ``duplicate`` so the operator refunds it instead of losing it.
"""

from __future__ import annotations

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from cityhub.domains.identity import Notice, Principal, notify
from cityhub.domains.services import schemas
from cityhub.domains.services.models import Bill, Department, Payment, Rating
from cityhub.domains.services.service.catalogue import name_of
from cityhub.domains.services.service.desk import (
    department_item,
    get_department,
    new_reference,
    require_desk,
    resident_subject,
    subject_digests,
)
from cityhub.kernel import audit
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import Conflict, NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.i18n import lazy_gettext as _l
from cityhub.kernel.payments import Checkout, InvalidCallback, SandboxProvider, Settlement

SETTLE_JOB = "services.payment.settle"
PAID = (
    _l("Payment received: %(title)s"),
    _l("Your payment of %(amount)s for %(title)s is confirmed. Receipt %(receipt)s."),
)
MAX_BILLS_SHOWN = 200


# -- issuing -----------------------------------------------------------------------------------------------


def issue_bills(
    session: Session, principal: Principal, department_code: str, given: schemas.BillsIn
) -> schemas.BillsImportOut:
    """Issue, amend or cancel bills by number (all or nothing); paid bills are never changed."""
    department = get_department(session, department_code)
    require_desk(principal, department)
    items = {
        code: department_item(session, department, code, "bill").id
        for code in {bill.item for bill in given.bills if bill.item}
    }
    subjects = _subjects(given.bills)
    existing = {
        row.number: row
        for row in session.scalars(
            select(Bill).where(
                Bill.department_id == department.id, Bill.number.in_([bill.number for bill in given.bills])
            )
        )
    }
    counts = {"issued": 0, "updated": 0, "cancelled": 0}
    refused: list[str] = []
    for bill, subject in zip(given.bills, subjects, strict=True):
        row = existing.get(bill.number)
        if row is not None and row.status != "unpaid":
            refused.append(bill.number)
            continue
        if bill.cancel:
            if row is not None:
                row.status = "cancelled"
                counts["cancelled"] += 1
            continue
        if row is None:
            row = Bill(department_id=department.id, number=bill.number)
            session.add(row)
            counts["issued"] += 1
        else:
            counts["updated"] += 1
        row.subject_hash, row.title, row.amount_cents = subject, bill.title, bill.amount_cents
        row.due_on, row.item_id = bill.due_on, items.get(bill.item) if bill.item else None
    result = schemas.BillsImportOut(**counts, refused=refused)
    audit.record(
        session,
        actor=principal.actor,
        action="services.bills.issued",
        object_type="services_department",
        object_id=department.code,
        details=result.model_dump(),
    )
    return result


def _subjects(bills: list[schemas.BillIn]) -> list[str]:
    subjects, malformed = subject_digests([bill.id_number for bill in bills])
    errors = [
        {"index": index, "number": bills[index].number, "detail": detail}
        for index, detail in malformed.items()
    ]
    if errors:
        raise ValidationProblem(
            _("%(count)s bills cannot be issued; nothing was changed.", count=len(errors)), errors=errors
        )
    return subjects


# -- a resident's bills --------------------------------------------------------------------------------------


def my_bills(session: Session, principal: Principal, status: str | None = None) -> list[schemas.BillOut]:
    subject = resident_subject(session, principal)
    statement = select(Bill).where(Bill.subject_hash == subject, Bill.status != "cancelled")
    if status is not None:
        statement = statement.where(Bill.status == status)
    rows = session.scalars(statement.order_by(Bill.issued_at.desc(), Bill.id.desc()).limit(MAX_BILLS_SHOWN))
    return [bill_out(session, row) for row in rows]


def own_bill(session: Session, principal: Principal, bill_id: int) -> Bill:
    bill = session.get(Bill, bill_id)
    if bill is None or bill.subject_hash != resident_subject(session, principal):
        raise NotFound(_("Bill %(id)s does not exist.", id=bill_id))
    return bill


def bill_out(session: Session, bill: Bill) -> schemas.BillOut:
    department = session.get_one(Department, bill.department_id)
    payment = _settling_payment(session, bill)
    rating = None
    if payment is not None:
        rating = session.scalar(
            select(Rating.level).where(Rating.subject_kind == "payment", Rating.subject_id == payment.id)
        )
    return schemas.BillOut(
        id=bill.id,
        number=bill.number,
        department=department.code,
        department_name=name_of(department),
        title=bill.title,
        amount_cents=bill.amount_cents,
        due_on=bill.due_on,
        status=bill.status,
        issued_at=bill.issued_at,
        paid_at=bill.paid_at,
        receipt_number=payment.receipt_number if payment else None,
        payment_reference=payment.reference if payment else None,
        rating=rating,
    )


def _settling_payment(session: Session, bill: Bill) -> Payment | None:
    """The payment that paid the bill (None while it is unpaid)."""
    if bill.status != "paid":
        return None
    return session.scalar(
        select(Payment).where(Payment.bill_id == bill.id, Payment.status == "succeeded").order_by(Payment.id)
    )


# -- paying -------------------------------------------------------------------------------------------------


def start_payment(
    session: Session, principal: Principal, provider: SandboxProvider, bill_id: int
) -> schemas.CheckoutOut:
    """Open a payment of an unpaid bill of the caller and the provider's checkout address for it."""
    bill = own_bill(session, principal, bill_id)
    if bill.status != "unpaid":
        raise Conflict(_("This bill is not open for payment."), slug="bill-not-payable")
    payment = Payment(
        reference=new_reference("P"),
        bill_id=bill.id,
        account_id=principal.id,
        provider=provider.name,
        amount_cents=bill.amount_cents,
    )
    session.add(payment)
    session.flush()
    checkout = Checkout(
        reference=payment.reference,
        amount_cents=payment.amount_cents,
        description=bill.title,
        return_path=f"/services/bills/{bill.id}",
        callback_job=SETTLE_JOB,
    )
    return schemas.CheckoutOut(
        payment_reference=payment.reference, checkout_url=provider.checkout_url(checkout)
    )


def settle(session: Session, provider: str, settlement: Settlement) -> str:
    """Apply a verified provider callback; returns the payment's status afterwards. Idempotent."""
    payment = session.scalar(select(Payment).where(Payment.reference == settlement.reference))
    if payment is None or payment.provider != provider:
        raise InvalidCallback(_("The payment callback names an unknown order."), status=404)
    if settlement.amount_cents != payment.amount_cents:
        raise InvalidCallback(_("The payment callback states another amount than the order."))
    if not settlement.succeeded:
        _change(session, Payment, Payment.id == payment.id, Payment.status == "pending", status="failed")
        session.refresh(payment)
        return payment.status
    now = utcnow()
    won = _change(
        session,
        Payment,
        Payment.id == payment.id,
        Payment.status.in_(("pending", "failed")),
        status="succeeded",
        provider_transaction=settlement.transaction,
        settled_at=now,
    )
    if won:
        paid = _change(
            session, Bill, Bill.id == payment.bill_id, Bill.status == "unpaid", status="paid", paid_at=now
        )
        status = "succeeded" if paid else "duplicate"
        receipt = f"R{now:%Y%m%d}{payment.id:08d}" if paid else None
        _change(session, Payment, Payment.id == payment.id, status=status, receipt_number=receipt)
        if paid:
            bill = session.get_one(Bill, payment.bill_id)
            params = {
                "title": bill.title,
                "amount": f"¥{payment.amount_cents / 100:.2f}",
                "receipt": receipt or "",
            }
            notify(
                session,
                payment.account_id,
                Notice("services.payment.paid", *PAID, params, f"/services/bills/{bill.id}"),
            )
        audit.record(
            session,
            actor=f"provider:{provider}",
            action=f"services.payment.{status}",
            object_type="services_payment",
            object_id=payment.reference,
            details={"amount_cents": payment.amount_cents, "transaction": settlement.transaction},
        )
    session.refresh(payment)
    return payment.status


def _change(session: Session, model: type[Bill] | type[Payment], *where: object, **values: object) -> bool:
    changed: CursorResult[object] = session.execute(  # type: ignore[assignment]
        update(model).where(*where).values(**values).execution_options(synchronize_session=False)  # type: ignore[arg-type]
    )
    return changed.rowcount == 1


def settle_sandbox_callback(session: Session, provider: SandboxProvider, body: bytes, signature: str) -> str:
    return settle(session, provider.name, provider.verify(body, signature))


def receipt(session: Session, principal: Principal, bill_id: int) -> schemas.ReceiptOut:
    bill = own_bill(session, principal, bill_id)
    payment = _settling_payment(session, bill)
    if payment is None or payment.receipt_number is None or payment.settled_at is None:
        raise NotFound(_("This bill has no receipt yet."))
    return schemas.ReceiptOut(
        receipt_number=payment.receipt_number,
        payment_reference=payment.reference,
        provider=payment.provider,
        provider_transaction=payment.provider_transaction or "",
        bill=bill_out(session, bill),
        paid_at=payment.settled_at,
    )
