"""Avatars (SPEC §7.2, §11.23): recognised by their bytes, stored in Postgres, one per user."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.auth import directory
from backend.chat.tables import photos
from backend.db import read, transaction

# The declared Content-Type and file name are the client's word; the magic bytes are not.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff(data: bytes) -> str | None:
    """The image type of `data` by its magic bytes: JPEG, PNG, WebP or GIF; None for anything else."""
    for magic, kind in _SIGNATURES:
        if data.startswith(magic) and len(data) > len(magic):
            return kind
    if len(data) > 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def photo_url(user_id: int) -> str:
    """Where a user's current avatar is served (SPEC §11.23: by user id)."""
    return f"/photos/{user_id}"


async def save_avatar(db: AsyncEngine, user_id: int, data: bytes, content_type: str) -> int:
    """Store `data` as the user's avatar and drop the previous ones; returns the photo id."""
    async with transaction(db) as conn:
        photo_id = (await conn.execute(insert(photos).values(
            user_id=user_id, content_type=content_type, size=len(data),
            sha256=hashlib.sha256(data).hexdigest(), data=data).returning(photos.c.id))).scalar_one()
        # set_avatar locks the user row, so of two concurrent uploads the later one wins whole:
        # it points at its own photo and deletes the other, which has committed by then.
        await directory.set_avatar(conn, user_id, photo_id)
        await conn.execute(delete(photos).where(photos.c.user_id == user_id, photos.c.id != photo_id))
    return int(photo_id)


async def load_avatar(db: AsyncEngine, user_id: int) -> Mapping[str, Any] | None:
    """content_type, sha256 and data of the user's current avatar, or None."""
    async with read(db) as conn:
        photo_id = await directory.avatar_of(conn, user_id)
        if photo_id is None:
            return None
        return (await conn.execute(select(photos.c.content_type, photos.c.sha256, photos.c.data)
                                   .where(photos.c.id == photo_id))).mappings().one_or_none()
