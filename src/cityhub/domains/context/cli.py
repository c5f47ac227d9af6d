"""Context hub commands: `cityhub context tenants|tie|mqtt-bridge`."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cityhub.domains.context.service import tenants
from cityhub.domains.context.settings import ContextSettings
from cityhub.domains.identity import get_unit_by_code
from cityhub.kernel import audit
from cityhub.kernel.db import Database
from cityhub.kernel.settings import domain_settings, get_settings

console = Console()
context_app = typer.Typer(name="context", help="The NGSI-LD context hub.", no_args_is_help=True)


def _database() -> Database:
    return Database.from_settings(get_settings())


@context_app.command("tenants")
def list_tenants() -> None:
    """List the NGSI-LD tenants and the org units they are tied to."""
    database = _database()
    table = Table("tenant", "org unit", "created")
    with database.reading() as session:
        for tenant in tenants.list_tenants(session):
            table.add_row(
                tenant.name or "(default)", str(tenant.org_unit_id or "-"), tenant.created_at.isoformat()
            )
    console.print(table)


@context_app.command("tie")
def tie(
    name: Annotated[str, typer.Argument(help="Tenant name (NGSILD-Tenant); '' for the default tenant.")],
    org: Annotated[str | None, typer.Option(help="Org unit code; omit to untie.")] = None,
) -> None:
    """Create a tenant or tie it to an org unit: only callers scoped over that unit may use it."""
    database = _database()
    with database.unit_of_work() as session:
        unit_id = get_unit_by_code(session, org).id if org else None
        tenants.tie_tenant(session, name, unit_id)
        audit.record(
            session,
            actor="system:cli",
            action="context.tenant.tie",
            object_type="context_tenant",
            object_id=name or "(default)",
            details={"org_unit_id": unit_id},
        )
    console.print(f"tenant {name or '(default)'} tied to {org or 'no org unit'}")


@context_app.command("mqtt-bridge")
def mqtt_bridge() -> None:
    """Store readings published to the MQTT broker (CITYHUB_CONTEXT__MQTT_*) until SIGTERM or Ctrl-C."""
    from cityhub.domains.context.ingest.mqtt import run_bridge

    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda _number, _frame: stop.set())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    section = domain_settings(ContextSettings)
    console.print(f"MQTT bridge: {section.mqtt_url}, topics {section.mqtt_topic_prefix}/#")
    run_bridge(get_settings(), section, stop)
