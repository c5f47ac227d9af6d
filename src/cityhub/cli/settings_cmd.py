"""`cityhub settings`: print the configuration reference or the values in force (secrets masked)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from cityhub.domains import manifests
from cityhub.kernel.settings import Settings, describe, domain_settings, get_settings

settings_app = typer.Typer(
    name="settings", help="Configuration reference and current values.", no_args_is_help=True
)
console = Console()
SECRET_WORDS = ("SECRET", "PASSWORD", "SALT")


def all_settings() -> list[tuple[str, str, str]]:
    rows = describe(Settings)
    for manifest in manifests():
        if manifest.settings is not None:
            rows += describe(manifest.settings, f"CITYHUB_{manifest.name.upper()}__")
    return rows


@settings_app.command("docs")
def settings_docs() -> None:
    """Print the Markdown table of every setting (docs/configuration.md embeds it)."""
    print("| variable | default | meaning |")
    print("|---|---|---|")
    for name, default, description in all_settings():
        print(f"| `{name}` | `{default}` | {description} |" if default else f"| `{name}` | | {description} |")


@settings_app.command("show")
def settings_show() -> None:
    """The values in force, from the environment and .env (secrets masked)."""
    values: dict[str, str] = {}
    _flatten(get_settings().model_dump(), "CITYHUB_", values)
    for manifest in manifests():
        if manifest.settings is not None:
            section = domain_settings(manifest.settings).model_dump()
            _flatten(section, f"CITYHUB_{manifest.name.upper()}__", values)
    table = Table("variable", "value")
    for name, value in values.items():
        table.add_row(name, "*****" if any(word in name for word in SECRET_WORDS) else value)
    console.print(table)


def _flatten(data: dict[str, object], prefix: str, into: dict[str, str]) -> None:
    for key, value in data.items():
        if isinstance(value, dict):
            _flatten(value, f"{prefix}{key.upper()}__", into)
        else:
            into[f"{prefix}{key.upper()}"] = str(value)
