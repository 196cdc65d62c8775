"""Handing out credentials to a signed-in user: access tokens, refresh pairs and their rotation."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from backend import keys
from backend.auth import refresh
from backend.auth.passwords import fingerprint_matches, stored_fingerprint
from backend.auth.tokens import AccessToken, issue_access, password_changed
from backend.auth.users import Identity, load_identity
from backend.db import transaction
from backend.errors import ApiError, unauthorized


@dataclass(frozen=True, slots=True)
class TokenPair:
    access: AccessToken
    refresh_token: str


def refresh_refused() -> ApiError:
    return unauthorized("Refresh-токен недействителен или отозван.", "refresh_token_not_valid")


async def issue_access_for(app: web.Application, identity: Identity, client: str) -> AccessToken:
    """An access token for `identity` that a logout-all of the same second does not void."""
    return issue_access(app[keys.CONFIG], user_id=identity.id, login=identity.login, role_id=identity.role_id,
                        password_hash=identity.password_hash, client=client,
                        issued_at=await app[keys.REVOCATIONS].not_before(identity.id))


async def issue_pair(app: web.Application, identity: Identity, client: str) -> TokenPair:
    """Access token plus the first refresh token of a new family (POST /auth/login)."""
    config = app[keys.CONFIG]
    access = await issue_access_for(app, identity, client)
    async with transaction(app[keys.DB]) as conn:
        raw = await refresh.create(conn, user_id=identity.id, client=client, ttl=config.refresh_ttl,
                                   pwd_fp=stored_fingerprint(config, identity.password_hash), access_jti=access.jti)
    return TokenPair(access, raw)


async def rotate(app: web.Application, raw: str) -> TokenPair:
    """Exchange a live refresh token for a new pair in the same family; 401 otherwise.

    A token that was already rotated is a sign of theft: its whole family is revoked.
    """
    config = app[keys.CONFIG]
    try:
        async with transaction(app[keys.DB]) as conn:
            grant = await refresh.consume(conn, raw)
            identity = await load_identity(conn, grant.user_id)
            if identity is None or not identity.active:
                raise refresh.RefreshRefused("inactive", family_id=grant.family_id, user_id=grant.user_id)
            if not fingerprint_matches(config, grant.pwd_fp, identity.password_hash):
                raise refresh.RefreshRefused("password_changed", family_id=grant.family_id, user_id=grant.user_id)
            access = await issue_access_for(app, identity, grant.client)
            new_raw = await refresh.create(conn, user_id=identity.id, client=grant.client, ttl=config.refresh_ttl,
                                           pwd_fp=stored_fingerprint(config, identity.password_hash),
                                           access_jti=access.jti, family_id=grant.family_id)
    except refresh.RefreshRefused as refused:
        # The transaction rolled back; the family is revoked in a transaction of its own.
        if refused.kills_family and refused.family_id is not None and refused.user_id is not None:
            await app[keys.REVOCATIONS].revoke_family(refused.user_id, refused.family_id)
        if refused.reason == "password_changed":
            raise password_changed() from None
        raise refresh_refused() from None
    return TokenPair(access, new_raw)
