"""Domain manifests: what a domain contributes to the platform, declared as data.

Entry points (web, cli, worker) read the manifests; the kernel never imports a domain. Code is referenced
by ``"module:attribute"`` strings so that a CLI command does not import every web router.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from babel.support import LazyProxy

from cityhub.kernel.settings import DomainSettings


def resolve(reference: str) -> Any:
    """Import ``"package.module:attribute"``."""
    module_name, _, attribute = reference.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


Text = str | LazyProxy  # a plain or a lazily translated string


@dataclass(frozen=True)
class Permission:
    """A permission code ``<domain>.<object>.<verb>`` and the built-in roles that hold it."""

    code: str
    description: Text
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Role:
    """A built-in role; its permissions come from every manifest's Permission.roles."""

    code: str
    title: Text


@dataclass(frozen=True)
class Tile:
    """A tile on the resident home grid (or a console menu entry when ``console`` is True)."""

    key: str
    title: Any  # a lazy translated string
    href: str
    icon: str
    permission: str | None = None
    console: bool = False
    order: int = 100


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    every: timedelta
    handler: str  # "module:function", called with a JobContext


@dataclass(frozen=True)
class Domain:
    name: str
    title: Any
    depends_on: tuple[str, ...] = ()
    api: str | None = None  # "module:router" mounted under /api/v1/<name>
    pages: str | None = None  # "module:router" of HTML pages
    extra_routers: tuple[str, ...] = ()  # standard APIs mounted at their own paths
    # path prefix -> "module:function(request, problem) -> Response": a standard API's own error shape
    error_renderers: Mapping[str, str] = field(default_factory=dict)
    # "module:Class" of pure ASGI middleware, Class(app), run inside the platform's request-id, locale and
    # session middleware: for a standard API's hot path that must skip routing
    asgi_middleware: tuple[str, ...] = ()
    cli: tuple[str, ...] = ()  # "module:typer_app" sub-commands, each named by its typer app
    models: str | None = None  # module imported so Alembic and the schema see the tables
    demo_seeder: str | None = None  # "module:function", called with a cityhub.kernel.demo.DemoContext
    permissions: tuple[Permission, ...] = ()
    roles: tuple[Role, ...] = ()
    tiles: tuple[Tile, ...] = ()
    periodic_jobs: tuple[PeriodicJob, ...] = ()
    job_handlers: Mapping[str, str] = field(default_factory=dict)  # job name -> "module:function"
    event_handlers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # event type -> handlers
    settings: type[DomainSettings] | None = None
    on_startup: tuple[Callable[..., None], ...] = ()


class AccessCatalog:
    """Every role and permission the installed domains declare; filled by the entry points."""

    def __init__(self) -> None:
        self.roles: dict[str, Role] = {}
        self.permissions: dict[str, Permission] = {}
        self._by_role: dict[str, frozenset[str]] = {}

    def register(self, domain: Domain) -> None:
        for role in domain.roles:
            self.roles[role.code] = role
        for permission in domain.permissions:
            self.permissions[permission.code] = permission
        self._by_role.clear()

    def permissions_of(self, role: str) -> frozenset[str]:
        """Checked on every request, so memoised until the next registration."""
        if role not in self._by_role:
            self._by_role[role] = frozenset(
                code for code, permission in self.permissions.items() if role in permission.roles
            )
        return self._by_role[role]


access_catalog = AccessCatalog()
