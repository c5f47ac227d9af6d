"""Fixtures of the voice tests: the hotline world of hotline.py and a clock stopped before National Day."""

from __future__ import annotations

import pytest

from tests.domains.voice.hotline import Hotline, at_sept_29, build_hotline

__all__ = ["at_sept_29"]


@pytest.fixture
def hotline(client, database) -> Hotline:  # type: ignore[no-untyped-def]
    return build_hotline(client, database)
