"""Identity: users, roles, permissions, passwords, JWT, refresh tokens, sessions, app tokens."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register the auth surfaces (the authenticate middleware is wired in create_app)."""
    from backend import keys
    from backend.auth import api_handlers, passwords, profile_handlers, resources, sessions, token_handlers
    from backend.auth.lifecycle import UserLifecycle
    from backend.auth.resolve import principal_from_access_token

    app[keys.USER_LIFECYCLE] = UserLifecycle()
    # Made here (it starts no thread yet) so the users resource can be handed it; closed with the app.
    app[keys.PASSWORD_POOL] = passwords.hashing_pool()
    app.cleanup_ctx.append(passwords.pool_ctx)
    app[keys.TOKEN_RESOLVER] = principal_from_access_token
    api_handlers.setup(app)
    sessions.setup(app)
    profile_handlers.setup(app)
    resources.setup(app)
    token_handlers.setup(app)
