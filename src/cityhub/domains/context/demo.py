"""Demo data of the context hub: Smart Data Models entities of the demo city."""

from __future__ import annotations

from cityhub.kernel.demo import DemoContext


def seed(context: DemoContext) -> None:
    del context
