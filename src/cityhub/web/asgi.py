"""ASGI entry point for uvicorn workers: ``uvicorn cityhub.web.asgi:app``."""

from cityhub.web.app import create_app

app = create_app()
