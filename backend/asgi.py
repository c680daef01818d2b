"""ASGI entry point for uvicorn (``backend.asgi:app``)."""

from backend.app import create_app
from backend.lib.logging import configure_logging

configure_logging()
app = create_app()
