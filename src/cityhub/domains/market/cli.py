"""Market commands: `cityhub market merchants` lists merchants by state (the review queue from a terminal);
`cityhub market expire` marks every coupon past its validity expired now, with a progress bar; `cityhub
market reconcile` checks the operator's books."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import func, select

from cityhub.domains.market.models import MERCHANT_STATES, Coupon, Merchant
from cityhub.domains.market.service import ledger
from cityhub.domains.market.service.coupons import expire_due
from cityhub.kernel.db import Database, utcnow
from cityhub.kernel.settings import get_settings

console = Console()
market_app = typer.Typer(
    name="market", help="The community market: merchants and coupons.", no_args_is_help=True
)
PASS = 5000


@market_app.command("merchants")
def merchants(
    status: Annotated[
        str | None, typer.Option(help=f"Only this state: {', '.join(MERCHANT_STATES)}.")
    ] = None,
) -> None:
    """Merchants, newest first."""
    if status is not None and status not in MERCHANT_STATES:
        console.print(f"[red]unknown state {status}[/]; use one of {', '.join(MERCHANT_STATES)}")
        raise typer.Exit(2)
    database = Database.from_settings(get_settings())
    try:
        with database.reading() as session:
            statement = select(Merchant).order_by(Merchant.id.desc())
            if status:
                statement = statement.where(Merchant.status == status)
            rows = list(session.scalars(statement))
    finally:
        database.dispose()
    table = Table("id", "code", "name", "category", "status", "applied")
    for merchant in rows:
        table.add_row(
            str(merchant.id),
            merchant.code,
            merchant.name,
            merchant.category,
            merchant.status,
            f"{merchant.created_at:%Y-%m-%d}",
        )
    console.print(table)


@market_app.command("expire")
def expire() -> None:
    """Expire every claimed coupon past its validity now (the periodic job does this in passes)."""
    settings = get_settings()
    database = Database.from_settings(settings)
    try:
        with database.reading() as session:
            due = session.scalar(
                select(func.count())
                .select_from(Coupon)
                .where(Coupon.status == "claimed", Coupon.valid_until <= utcnow())
            )
        with Progress(console=console) as progress:
            task = progress.add_task("expiring coupons", total=due or 0)
            while True:
                with database.unit_of_work() as session:
                    done = expire_due(session, settings.timezone, PASS)
                progress.advance(task, done)
                if done < PASS:
                    break
    finally:
        database.dispose()
    console.print(f"expired {due or 0} coupon(s)")


@market_app.command("reconcile")
def reconcile() -> None:
    """Check the operator's books: every transaction balances and every redemption carries the commission
    its rules give. Exits 1 and lists the problems when they do not agree."""
    database = Database.from_settings(get_settings())
    try:
        with database.reading() as session:
            problems = ledger.reconcile(session)
    finally:
        database.dispose()
    for problem in problems[:200]:
        console.print(f"[red]{problem}[/]")
    if problems:
        console.print(f"{len(problems)} problem(s)")
        raise typer.Exit(1)
    console.print("the books agree")
