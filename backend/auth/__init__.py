"""Identity: users, roles, permissions, passwords, JWT, refresh tokens, sessions, app tokens."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register the auth surfaces (the authenticate middleware is wired in create_app)."""
    from backend.auth import api_handlers, profile_handlers, resources, sessions, token_handlers

    api_handlers.setup(app)
    sessions.setup(app)
    profile_handlers.setup(app)
    resources.setup(app)
    token_handlers.setup(app)
