"""Refresh tokens (SPEC §3.3): opaque, stored as SHA-256 only, rotated on use, families revoked on reuse."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.auth.tables import refresh_tokens

TOKEN_BYTES = 32          # 256 bits of randomness (SPEC §3.3: at least 256)


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid refresh token stood for, once it has been consumed by a rotation."""

    user_id: int
    family_id: uuid.UUID
    client: str
    pwd_fp: str


class RefreshRefused(Exception):
    """The token may not be used: `reason` is unknown | dead | reused | inactive | password_changed.

    For every reason but unknown/dead the token's family must be revoked (`family_id`, `user_id`).
    """

    def __init__(self, reason: str, *, family_id: uuid.UUID | None = None, user_id: int | None = None) -> None:
        super().__init__(f"refresh token refused: {reason}")
        self.reason = reason
        self.family_id = family_id
        self.user_id = user_id

    @property
    def kills_family(self) -> bool:
        return self.reason in ("reused", "inactive", "password_changed") and self.family_id is not None


def token_hash(raw: str) -> str:
    """SHA-256 hex of the opaque token: the only form the database ever sees."""
    return hashlib.sha256(raw.encode()).hexdigest()


async def create(conn: AsyncConnection, *, user_id: int, client: str, pwd_fp: str, ttl: float,
                 access_jti: str | None, family_id: uuid.UUID | None = None) -> str:
    """Store a new refresh token (a new family unless `family_id`); returns the raw token."""
    raw = secrets.token_urlsafe(TOKEN_BYTES)
    await conn.execute(insert(refresh_tokens).values(
        token_hash=token_hash(raw), user_id=user_id, family_id=family_id or uuid.uuid4(), client=client,
        pwd_fp=pwd_fp, access_jti=access_jti,
        expires_at=func.now() + dt.timedelta(seconds=ttl)))
    return raw


async def consume(conn: AsyncConnection, raw: str) -> Grant:
    """Mark `raw` rotated and return its grant; RefreshRefused when it is not live.

    The conditional UPDATE is the race guard: of two concurrent calls with one token, the second
    waits for the first's row lock, re-checks `revoked_at IS NULL`, matches nothing and is
    treated as a reuse.
    """
    hashed = token_hash(raw)
    row = (await conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.token_hash == hashed, refresh_tokens.c.revoked_at.is_(None),
               refresh_tokens.c.expires_at > func.now())
        .values(rotated_at=func.now(), revoked_at=func.now())
        .returning(refresh_tokens.c.user_id, refresh_tokens.c.family_id, refresh_tokens.c.client,
                   refresh_tokens.c.pwd_fp))).one_or_none()
    if row is not None:
        return Grant(user_id=int(row.user_id), family_id=row.family_id, client=row.client, pwd_fp=row.pwd_fp)
    known = (await conn.execute(select(refresh_tokens.c.family_id, refresh_tokens.c.user_id,
                                       refresh_tokens.c.rotated_at)
                                .where(refresh_tokens.c.token_hash == hashed))).one_or_none()
    if known is None:
        raise RefreshRefused("unknown")
    if known.rotated_at is None:       # expired or revoked without rotation: nothing new to revoke
        raise RefreshRefused("dead")
    raise RefreshRefused("reused", family_id=known.family_id, user_id=int(known.user_id))


async def revoke_family(conn: AsyncConnection, family_id: uuid.UUID, access_ttl: float) -> list[str]:
    """Revoke every token of a family; returns the jtis of access tokens it issued that may still live."""
    await conn.execute(update(refresh_tokens)
                       .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None))
                       .values(revoked_at=func.now()))
    return await _recent_jtis(conn, refresh_tokens.c.family_id == family_id, access_ttl)


async def revoke_user(conn: AsyncConnection, user_id: int) -> None:
    """Revoke every live refresh token of a user (logout all, block, delete, password change)."""
    await conn.execute(update(refresh_tokens)
                       .where(refresh_tokens.c.user_id == user_id, refresh_tokens.c.revoked_at.is_(None))
                       .values(revoked_at=func.now()))


async def family_of(conn: AsyncConnection, access_jti: str) -> uuid.UUID | None:
    """The family whose rotation issued the access token `access_jti` (None: login without refresh)."""
    return (await conn.execute(select(refresh_tokens.c.family_id)
                               .where(refresh_tokens.c.access_jti == access_jti).limit(1))).scalar_one_or_none()


async def _recent_jtis(conn: AsyncConnection, condition: object, access_ttl: float) -> list[str]:
    since = func.now() - dt.timedelta(seconds=access_ttl)
    rows = await conn.execute(select(refresh_tokens.c.access_jti)
                              .where(condition, refresh_tokens.c.access_jti.is_not(None),  # type: ignore[arg-type]
                                     refresh_tokens.c.created_at > since))
    return [jti for (jti,) in rows]
