"""Operations commands: ``cityhub worker`` and ``cityhub audit verify``."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from cityhub.domains import manifests
from cityhub.kernel.audit import verify
from cityhub.kernel.db import Database
from cityhub.kernel.settings import get_settings
from cityhub.worker import Runner, build_registry

console = Console()
audit_app = typer.Typer(help="The tamper-evident audit chain.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the operations commands to the root ``cityhub`` command."""
    app.command()(worker)
    app.add_typer(audit_app, name="audit")


def worker(
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Jobs run in parallel (threads).")] = 4,
    once: Annotated[bool, typer.Option("--once", help="Run the work that is due now, then exit.")] = False,
) -> None:
    """Run jobs and event deliveries from the shared queue until SIGTERM or Ctrl-C."""
    settings = get_settings()
    database = Database.from_url(
        settings.resolved_database_url, max(settings.database_pool_size, concurrency)
    )
    runner = Runner(database, settings, build_registry(manifests()), concurrency=concurrency)
    try:
        if once:
            console.print(f"[green]ran {runner.run_until_idle()} job(s)[/]")
            return
        _stop_on_signals(runner)
        console.print(f"worker [bold]{runner.name}[/] — {concurrency} thread(s) on {database.dialect}")
        runner.start().wait()
    finally:
        runner.stop()
        database.dispose()


def _stop_on_signals(runner: Runner) -> None:
    """SIGTERM/SIGINT ask the runner to finish the jobs in hand and exit."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        console.print(f"{signal.Signals(signum).name}: finishing the jobs in hand…")
        runner.request_stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


@audit_app.command("verify")
def audit_verify() -> None:
    """Check every link of the audit chain; exit 1 naming the first broken record."""
    settings = get_settings()
    database = Database.from_url(settings.resolved_database_url)
    try:
        with database.reading() as session:
            result = verify(session)
    finally:
        database.dispose()
    if result.ok:
        console.print(f"[green]chain intact: {result.checked} records[/]")
        if result.head_hash:
            console.print(f"head hash {result.head_hash} (keep a copy elsewhere to detect a rewritten chain)")
        return
    console.print(f"[red bold]chain broken at record #{result.broken_id}[/]: {result.reason}")
    console.print(f"{result.checked} record(s) before it are intact")
    raise typer.Exit(1)
