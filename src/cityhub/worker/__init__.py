"""Workers: run jobs and event deliveries from the shared queue (``cityhub worker`` or embedded in the app).

This package turns the domain manifests into the kernel's registries; the kernel itself never imports
a domain.
"""

from __future__ import annotations

from collections.abc import Iterable

from cityhub.domains import manifests
from cityhub.kernel.db import Database
from cityhub.kernel.domain import Domain, resolve
from cityhub.kernel.events import EventHandlers
from cityhub.kernel.jobs import KERNEL_PERIODIC_JOBS, JobRegistry
from cityhub.kernel.settings import Settings
from cityhub.worker.runner import Runner

__all__ = ["Runner", "build_registry", "start_embedded_runner"]


def build_registry(domains: Iterable[Domain]) -> JobRegistry:
    """Every job, periodic job and event handler the domains declare, plus the kernel's own jobs.

    Handlers are imported here, at start-up, so a broken reference stops the worker immediately rather
    than failing each job later.
    """
    registry = JobRegistry()
    event_handlers = EventHandlers()
    for periodic in KERNEL_PERIODIC_JOBS:
        registry.add_periodic(periodic, resolve(periodic.handler))
    for domain in domains:
        for name, reference in domain.job_handlers.items():
            registry.add(name, resolve(reference))
        for periodic in domain.periodic_jobs:
            registry.add_periodic(periodic, resolve(periodic.handler))
        for event_type, references in domain.event_handlers.items():
            for reference in references:
                event_handlers.add(event_type, resolve(reference), reference)
    event_handlers.install(registry)
    return registry


def start_embedded_runner(settings: Settings, database: Database) -> Runner:
    """The app's in-process runner (one thread): the embedded (SQLite) deployment needs no worker process."""
    return Runner(database, settings, build_registry(manifests())).start()
