"""`cityhub` — serve, migrate, seed the demo city, run workers, and administer the platform."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.console import Console

from cityhub.domains import manifests
from cityhub.kernel.domain import resolve
from cityhub.kernel.settings import get_settings

app = typer.Typer(
    help="cityhub: one platform for a city's services, data, devices and communities.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="App processes.")] = 1,
) -> None:
    """Serve the web app and APIs (database from CITYHUB_DATABASE_URL, default SQLite under ./var/)."""
    import uvicorn

    from cityhub.cli.server import APP, ServerOptions, reuse_port_supported, serve_workers

    settings = get_settings()
    console.print(f"cityhub on [bold]http://{host}:{port}[/] — database {settings.resolved_database_url}")
    if workers > 1 and settings.rate_limits.storage_uri.startswith("memory://"):
        console.print(
            "[yellow]rate limits are counted per process (memory://); set "
            "CITYHUB_RATE_LIMITS__STORAGE_URI=redis://... to share them[/]"
        )
    options = ServerOptions(host, port, settings.log_level, settings.forwarded_allow_ips)
    if workers > 1 and reuse_port_supported():
        raise typer.Exit(serve_workers(options, workers))
    uvicorn.run(
        APP,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


@app.command()
def migrate(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Bring the database schema up to date."""
    from cityhub.migrations import upgrade

    settings = get_settings()
    upgrade(settings.resolved_database_url, revision)
    console.print(f"[green]database at {revision}[/]: {settings.resolved_database_url}")


def _register_subcommands() -> None:
    from cityhub.cli.demo import register as register_demo
    from cityhub.cli.ops import register as register_ops
    from cityhub.cli.settings_cmd import settings_app

    register_demo(app)
    register_ops(app)
    app.add_typer(settings_app)
    for manifest in manifests():
        for reference in manifest.cli:
            app.add_typer(resolve(reference))


logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
_register_subcommands()
