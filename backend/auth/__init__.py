"""Identity: users, roles, permissions, passwords, JWT, refresh tokens, sessions, app tokens."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register the auth surfaces (the authenticate middleware is wired in create_app)."""
    from backend.auth import api_handlers

    api_handlers.setup(app)
