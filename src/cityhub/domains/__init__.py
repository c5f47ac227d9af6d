"""The installed domains, in dependency order."""

from __future__ import annotations

from functools import cache

from cityhub.kernel.domain import Domain, access_catalog, resolve
from cityhub.kernel.settings import Settings, domain_settings

INSTALLED = ("identity", "context", "services", "voice", "market", "exchange")


@cache
def manifests() -> tuple[Domain, ...]:
    """Every installed domain's manifest, each after the domains it depends on."""
    by_name: dict[str, Domain] = {}
    for name in INSTALLED:
        manifest = resolve(f"cityhub.domains.{name}.manifest:MANIFEST")
        assert isinstance(manifest, Domain) and manifest.name == name, f"bad manifest for {name}"
        by_name[name] = manifest
    ordered: list[Domain] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if any(domain.name == name for domain in ordered):
            return
        if name in visiting:
            raise RuntimeError(f"dependency cycle through domain {name!r}")
        if name not in by_name:
            raise RuntimeError(f"a manifest depends on {name!r}, which is not installed")
        visiting.add(name)
        for dependency in by_name[name].depends_on:
            visit(dependency)
        visiting.discard(name)
        ordered.append(by_name[name])

    for name in INSTALLED:
        visit(name)
    for domain in ordered:
        access_catalog.register(domain)
    return tuple(ordered)


def check_domain_settings(settings: Settings) -> None:
    """Every domain's settings section must accept the environment (raises ValueError naming the problem)."""
    for manifest in manifests():
        if manifest.settings is not None:
            domain_settings(manifest.settings).check_environment(settings)


def load_models() -> None:
    """Import every domain's models so the metadata holds all tables."""
    import cityhub.kernel.models  # noqa: F401 - registers the kernel tables

    for manifest in manifests():
        if manifest.models:
            resolve(manifest.models)
