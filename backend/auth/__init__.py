"""Identity: users, roles, permissions, passwords, JWT, refresh tokens, sessions, app tokens."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register the auth surfaces (the authenticate step is wired in create_app)."""
    from backend import keys
    from backend.auth import api_handlers, passwords, profile_handlers, resources, sessions, token_handlers
    from backend.auth.lifecycle import UserLifecycle
    from backend.auth.origin import refuse_foreign_session_origin
    from backend.auth.resolve import principal_from_access_token, reload_principal
    from backend.auth.revocation import revocations_ctx

    app[keys.USER_LIFECYCLE] = UserLifecycle()
    # Made here (it starts no thread yet) so the users resource can be handed it; closed with the app.
    app[keys.PASSWORD_POOL] = passwords.hashing_pool()
    app.cleanup_ctx.append(passwords.pool_ctx)
    app.cleanup_ctx.append(revocations_ctx)        # before sessions_ctx: the session storage names keys by it
    # Realtime sits below auth: it gets what it needs of auth injected, never imported.
    app[keys.TOKEN_RESOLVER] = principal_from_access_token
    app[keys.PRINCIPAL_RELOADER] = reload_principal
    app[keys.ORIGIN_GUARD] = refuse_foreign_session_origin
    api_handlers.setup(app)
    sessions.setup(app)
    profile_handlers.setup(app)
    resources.setup(app)
    token_handlers.setup(app)
