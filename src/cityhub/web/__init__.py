"""The web layer: the app factory, the HTML shell, static files and error rendering."""

from cityhub.web.app import create_app

__all__ = ["create_app"]
