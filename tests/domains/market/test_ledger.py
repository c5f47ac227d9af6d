"""The operator's revenue: commission rules, commissions posted once per redemption by the event handler,
listing fees and payments, monthly statements, the revenue view, reconciliation — and a property test that
any sequence of redemptions, fees and payments keeps the books balanced and agreeing with the statements."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pypdf import PdfReader
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from cityhub.cli.main import app as cli_app
from cityhub.domains import manifests
from cityhub.domains.market.models import LedgerEntry, LedgerTransaction
from cityhub.domains.market.service import ledger
from cityhub.kernel import pdf as kernel_pdf
from cityhub.kernel.settings import clear_settings_cache
from cityhub.worker import build_registry
from tests.domains.market.world import API, Market, build_market, make_batch
from tests.kernel.kernel_testing import drain


def _month() -> str:
    return datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")


def _rule(client, market: Market, **rule: Any) -> None:  # type: ignore[no-untyped-def]
    answer = client.post(f"{API}/commission-rules", json=rule, headers=market.operator)
    assert answer.status_code == 201, answer.text


def _redeem(
    client, market: Market, batch: int, amount: int, key: str, who: dict[str, str] | None = None
) -> None:  # type: ignore[no-untyped-def]
    claimed = client.post(f"{API}/batches/{batch}/claim", headers=who or market.resident)
    assert claimed.status_code == 201, claimed.text
    code = claimed.json()["code"]
    body = {"codes": [code], "store_id": market.stores[0], "amount_cents": amount, "client_key": key}
    answer = client.post(f"{API}/merchants/{market.merchant_id}/redemptions", json=body, headers=market.till)
    assert answer.status_code == 201, answer.text


def _deliver(database, app_settings) -> None:  # type: ignore[no-untyped-def]
    drain(database, build_registry(manifests()), app_settings)


def test_commissions_fees_payments_statement_and_revenue(client, database, settings) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    _rule(client, market, category="food", rate_bp=1000)  # 10 % for restaurants
    _rule(client, market, merchant_id=market.merchant_id, fixed_cents=30)  # this merchant: 0.30 a coupon
    cash = make_batch(client, market, per_person_limit=5)  # 5.00 off
    discount = make_batch(client, market, kind="DISCOUNT", discount_percent=20, per_person_limit=5)
    _redeem(client, market, cash, 5000, "led-0000001")
    _redeem(client, market, discount, 5000, "led-0000002")  # 10.00 off
    _deliver(database, settings)
    _deliver(database, settings)  # a second run posts nothing more
    base = f"{API}/merchants/{market.merchant_id}"
    fee = {"kind": "listing_fee", "amount_cents": 20000, "reference": "INV-2026-12", "memo": "首页推荐位"}
    assert client.post(f"{base}/charges", json=fee, headers=market.operator).status_code == 201
    assert (
        client.post(f"{base}/charges", json=fee, headers=market.operator).status_code == 422
    )  # same reference
    paid = {"kind": "settlement", "amount_cents": 10000, "reference": "BANK-778"}
    assert client.post(f"{base}/charges", json=paid, headers=market.operator).status_code == 201
    assert client.post(f"{base}/charges", json=paid, headers=market.owner).status_code == 403

    month = _month()
    statement = client.get(f"{base}/statements/{month}", headers=market.owner).json()
    assert statement["commission_cents"] == 60  # the merchant's own rule wins: 2 coupons x 0.30
    assert (statement["listing_fee_cents"], statement["paid_cents"]) == (20000, 10000)
    assert (
        statement["opening_balance_cents"] == 0 and statement["closing_balance_cents"] == 60 + 20000 - 10000
    )
    assert [line["kind"] for line in statement["lines"]] == [
        "commission",
        "commission",
        "listing_fee",
        "settlement",
    ]
    csv_text = client.get(
        f"{base}/statements/{month}", params={"format": "csv"}, headers=market.operator
    ).content
    assert "closing_balance_yuan,100.60" in csv_text.decode("utf-8-sig")
    assert client.get(f"{base}/statements/{month}", headers=market.clerk).status_code == 403
    assert client.get(f"{base}/statements/2026-13", headers=market.owner).status_code == 422

    revenue = client.get(f"{API}/revenue/{month}", headers=market.operator).json()
    assert [
        (r["commission_cents"], r["listing_fee_cents"], r["paid_cents"], r["owed_cents"]) for r in revenue
    ] == [(60, 20000, 10000, 10060)]
    assert client.get(f"{API}/revenue/{month}", headers=market.owner).status_code == 403
    with database.reading() as session:
        assert ledger.reconcile(session) == []


def test_reconcile_finds_a_tampered_ledger_and_a_missing_commission(client, database, settings) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    _rule(client, market, category="food", rate_bp=500)
    batch = make_batch(client, market, per_person_limit=5)
    _redeem(client, market, batch, 5000, "rec-0000001")
    _redeem(client, market, batch, 5000, "rec-0000002")
    runner = CliRunner()
    env = {"CITYHUB_DATABASE_URL": database.engine.url.render_as_string(hide_password=False)}
    missing = runner.invoke(cli_app, ["market", "reconcile"], env=env)
    assert missing.exit_code == 1 and "rec-0000001" in missing.output  # not delivered yet: no commission
    _deliver(database, settings)
    agreed = runner.invoke(cli_app, ["market", "reconcile"], env=env)
    assert agreed.exit_code == 0, agreed.output
    with database.unit_of_work() as session:
        first = session.scalar(select(func.min(LedgerEntry.id)))
        session.execute(
            update(LedgerEntry).where(LedgerEntry.id == first).values(debit_cents=LedgerEntry.debit_cents + 1)
        )
    tampered = runner.invoke(cli_app, ["market", "reconcile"], env=env)
    assert tampered.exit_code == 1 and "does not balance" in tampered.output


def test_rules_are_checked(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    for bad in (
        {"rate_bp": 100},
        {"category": "food", "merchant_id": market.merchant_id},
        {"category": "food", "rate_bp": 10001},
    ):
        assert client.post(f"{API}/commission-rules", json=bad, headers=market.operator).status_code == 422
    assert (
        client.post(f"{API}/commission-rules", json={"category": "food"}, headers=market.owner).status_code
        == 403
    )
    assert client.get(f"{API}/commission-rules", headers=market.operator).json() == []


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("redeem"), st.integers(min_value=3000, max_value=200_000)),
        st.tuples(st.just("fee"), st.integers(min_value=1, max_value=50_000)),
        st.tuples(st.just("payment"), st.integers(min_value=1, max_value=50_000)),
    ),
    min_size=1,
    max_size=8,
)


@pytest.fixture
def lifted_claim_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hypothesis's examples claim far more than a person may per minute; the limits are not under test."""
    monkeypatch.setenv("CITYHUB_MARKET__CLAIM_RATE", "100000/minute")
    monkeypatch.setenv("CITYHUB_MARKET__DEVICE_CLAIM_RATE", "100000/minute")
    clear_settings_cache()


@pytest.mark.usefixtures("lifted_claim_limits")
def test_any_sequence_keeps_the_books_balanced_and_matching_the_statement(client, database, settings) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    _rule(client, market, category="food", rate_bp=250, fixed_cents=7)
    batch = make_batch(
        client, market, kind="DISCOUNT", discount_percent=10, per_person_limit=100, stock=100_000
    )
    base = f"{API}/merchants/{market.merchant_id}"
    counter = iter(range(1_000_000))

    @settings_for_db
    @given(OPERATIONS)
    def run(operations: list[tuple[str, int]]) -> None:
        for kind, amount in operations:
            n = next(counter)
            if kind == "redeem":
                _redeem(client, market, batch, amount, f"prop-{n:07d}")
            else:
                charge = {
                    "kind": "listing_fee" if kind == "fee" else "settlement",
                    "amount_cents": amount,
                    "reference": f"ref-{n}",
                }
                assert client.post(f"{base}/charges", json=charge, headers=market.operator).status_code == 201
        _deliver(database, settings)
        with database.reading() as session:
            assert ledger.reconcile(session) == []
            debits, credits = session.execute(
                select(func.sum(LedgerEntry.debit_cents), func.sum(LedgerEntry.credit_cents))
            ).one()
            assert debits == credits
            receivable = session.scalar(
                select(func.sum(LedgerEntry.debit_cents - LedgerEntry.credit_cents)).where(
                    LedgerEntry.account == "merchant_receivable"
                )
            )
            months = sorted(set(session.scalars(select(LedgerTransaction.month))))
        statements = [
            client.get(f"{base}/statements/{month}", headers=market.owner).json() for month in months
        ]
        assert statements[-1]["closing_balance_cents"] == receivable
        for statement in statements:
            lines = statement["lines"]
            assert statement["commission_cents"] == sum(
                line["charged_cents"] for line in lines if line["kind"] == "commission"
            )
            assert statement["closing_balance_cents"] == statement["opening_balance_cents"] + sum(
                line["charged_cents"] - line["paid_cents"] for line in lines
            )
        revenue = client.get(f"{API}/revenue/{months[-1]}", headers=market.operator).json()
        assert revenue[0]["owed_cents"] == receivable

    run()


settings_for_db = hypothesis_settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def test_the_statement_as_pdf(client, database, settings) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    _rule(client, market, category="food", rate_bp=1000)
    _redeem(client, market, make_batch(client, market), 5000, "pdf-0000001")  # 5.00 off: 0.50 commission
    _deliver(database, settings)
    base = f"{API}/merchants/{market.merchant_id}"
    fee = {"kind": "listing_fee", "amount_cents": 12345, "reference": "INV-PDF", "memo": "首页推荐位"}
    assert client.post(f"{base}/charges", json=fee, headers=market.operator).status_code == 201
    month, pdf = _month(), {"format": "pdf"}

    answer = client.get(f"{base}/statements/{month}", params=pdf, headers=market.owner)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(answer.content)).pages)
    assert "首页推荐位" in text and "123.45" in text and "¥123.95" in text  # the fee; the closing balance
    assert client.get(f"{base}/statements/{month}", params=pdf, headers=market.clerk).status_code == 403


def test_without_a_chinese_font_the_pdf_is_refused_clearly(client, database, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    monkeypatch.setattr(kernel_pdf, "KNOWN_CJK_FONTS", ())
    answer = client.get(
        f"{API}/merchants/{market.merchant_id}/statements/{_month()}",
        params={"format": "pdf"},
        headers=market.owner,
    )
    assert answer.status_code == 503 and answer.json()["type"].endswith("pdf-unavailable")
