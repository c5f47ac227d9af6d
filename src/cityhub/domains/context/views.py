"""Operator pages of the context hub (``/console/context``)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
