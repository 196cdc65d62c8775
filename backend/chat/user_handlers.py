"""Messenger account handlers (seed 004 §2, SPEC §7.1-7.2): users, login/logout, avatars."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import BodyPartReader, web

from backend import keys
from backend.api.access import client_address, current_user
from backend.api.responses import respond
from backend.api.validation import payload_too_large, read_json, read_query, unsupported_media_type, validate
from backend.auth import directory, sessions
from backend.auth.login import check_password
from backend.chat import const, photos
from backend.chat.schemas import LoginIn, SearchQuery, UserCreateIn, UserOut, UserPutIn
from backend.db import read
from backend.errors import ApiError
from backend.principal import Permission, Principal

MULTIPART_SLACK = 64 * 1024      # boundaries, part headers and small text fields around the file
CHUNK = 64 * 1024
PRIVATE_TO = (Permission.MANAGE_USERS, Permission.MANAGE_CLIENTS)    # SPEC §2.1: who sees others' contacts


def user_out(row: Mapping[str, Any], viewer: Principal | None) -> dict[str, Any]:
    """The seed-004 user; another user's email and phone are null (SPEC §2.1, §11.22)."""
    own = viewer is not None and (viewer.user_id == row["id"] or viewer.has_any(*PRIVATE_TO))
    return UserOut(id=row["id"], email=row["email"] if own else None, username=row["username"],
                   name=row["name"], status=row["status"], phone=row["phone"] if own else None,
                   avatar_url=photos.photo_url(row["id"]) if row["avatar_photo_id"] else None
                   ).model_dump(mode="json")


def user_id_of(request: web.Request) -> int:
    """The {id} of /users/{id} and /photos/{id}; past bigint it names nobody (400, not a 500)."""
    user_id = int(request.match_info["id"])
    if user_id > const.BIGINT_MAX:
        raise const.user_not_found()
    return user_id


async def _live(app: web.Application, user_id: int) -> dict[str, Any]:
    async with read(app[keys.DB]) as conn:
        row = await directory.live_user(conn, user_id)
    if row is None:
        raise const.user_not_found()
    return row


# ---- registration and sessions --------------------------------------------------------------------

async def register(request: web.Request) -> web.Response:
    """POST /users: a new messenger user; it signs in with POST /login."""
    data = await read_json(request, UserCreateIn)
    app = request.app
    row = await directory.register(app[keys.DB], app[keys.CONFIG], app[keys.PASSWORD_POOL], email=data.email,
                                   password=data.password, username=data.username, name=data.name,
                                   status=data.status, phone=data.phone)
    await app[keys.USER_LIFECYCLE].registered(app[keys.BUS], row)
    return respond(user_out(row, Principal(user_id=row["id"])), status=201)


async def login(request: web.Request) -> web.Response:
    """POST /login: bind the user to a new sessid session (the same session as /profile/signin)."""
    data = await read_json(request, LoginIn)
    try:
        identity = await check_password(request.app, data.email, data.password, client_address(request))
    except ApiError as err:
        # Seed 004 answers a wrong login or password with 400; blocked users and limits keep theirs.
        if err.code == "authentication_failed":
            raise const.invalid_credentials() from None
        raise
    await sessions.sign_in(request, identity)
    return respond(user_out(await _live(request.app, identity.id), Principal(user_id=identity.id)))


async def logout(request: web.Request) -> web.Response:
    """DELETE /logout: unbind the session's user (the sessid stays); 200 even when nobody was in."""
    await sessions.sign_out(request)
    return respond({"message": "Вы вышли из учётной записи."})


# ---- users ------------------------------------------------------------------------------------------

async def me(request: web.Request) -> web.Response:
    """GET /users: the signed-in user."""
    principal = current_user(request)
    return respond(user_out(await _live(request.app, principal.user_id or 0), principal))


async def get_user(request: web.Request) -> web.Response:
    """GET /users/{id}: one user, another's email and phone hidden."""
    principal = current_user(request)
    return respond(user_out(await _live(request.app, user_id_of(request)), principal))


async def put_user(request: web.Request) -> web.Response:
    """PUT /users/{id}: replace every editable field, by the user or a user manager."""
    principal = current_user(request)
    user_id = user_id_of(request)
    if principal.user_id != user_id and not principal.has(const.MANAGE_USERS):
        raise const.forbidden()
    data = await read_json(request, UserPutIn)
    if data.id is not None and data.id != user_id:
        raise ApiError(400, "id_mismatch", "id в теле не совпадает с id в адресе.")
    phone = data.phone if "phone" in data.model_fields_set else directory.UNSET
    row = await directory.replace_profile(request.app[keys.DB], user_id, email=data.email, username=data.username,
                                          name=data.name, status=data.status, phone=phone)
    if row is None:
        raise const.user_not_found()
    return respond(user_out(row, principal))


async def _search(request: web.Request, fragment: str) -> web.Response:
    principal = current_user(request)
    async with read(request.app[keys.DB]) as conn:
        found = await directory.search_by_username(conn, fragment, const.SEARCH_LIMIT)
    return respond({"users": [user_out(row, principal) for row in found]})


async def search_by_path(request: web.Request) -> web.Response:
    """GET /users/{name}: users whose username contains `name` (numeric names: /users/search?q=)."""
    return await _search(request, validate(SearchQuery, {"q": request.match_info["name"]}).q)


async def search_by_query(request: web.Request) -> web.Response:
    """GET /users/search?q=: the same search, for any query (numeric ones included)."""
    query = read_query(request, SearchQuery)
    return await _search(request, query.q)


# ---- avatars ----------------------------------------------------------------------------------------

async def _read_part(part: BodyPartReader, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(CHUNK):
        size += len(chunk)
        if size > limit:
            raise payload_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_photo(request: web.Request, limit: int) -> bytes:
    """The one file of a multipart/form-data body: field `photo`, or any single file field."""
    if request.content_type != "multipart/form-data":
        raise unsupported_media_type("multipart/form-data")
    if request.content_length is not None and request.content_length > limit + MULTIPART_SLACK:
        raise payload_too_large(limit)
    found: bytes | None = None
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise ApiError(400, "parse_error", "Вложенные multipart-части не поддерживаются.")
            if part.filename is None and part.name != "photo":
                await _read_part(part, MULTIPART_SLACK)       # a text field: read past it
                continue
            if found is not None:
                raise const.many_files()
            found = await _read_part(part, limit)
    except ValueError:
        # aiohttp's multipart parser reports a missing boundary or a broken body as ValueError.
        raise ApiError(400, "parse_error", "Некорректное тело multipart/form-data.") from None
    if found is None:
        raise const.no_file()
    return found


async def upload_photo(request: web.Request) -> web.Response:
    """POST /photos: the caller's new avatar (JPEG/PNG/WebP/GIF by content, ≤ MAX_PHOTO_SIZE)."""
    principal = current_user(request)
    app = request.app
    data = await read_photo(request, app[keys.CONFIG].max_photo)
    kind = photos.sniff(data)
    if kind is None:
        raise const.not_an_image()
    user_id = principal.user_id or 0
    photo_id = await photos.save_avatar(app[keys.DB], user_id, data, kind)
    return respond({"id": photo_id, "url": photos.photo_url(user_id)}, status=201)


async def get_photo(request: web.Request) -> web.StreamResponse:
    """GET /photos/{user id}: the current avatar's bytes; If-None-Match with its ETag → 304."""
    current_user(request)
    photo = await photos.load_avatar(request.app[keys.DB], user_id_of(request))
    if photo is None:
        raise const.no_avatar()
    # /photos/{id} keeps its URL when the avatar changes, so caches must revalidate (cheap: 304).
    headers = {"ETag": f'"{photo["sha256"]}"', "Cache-Control": "private, no-cache",
               "X-Content-Type-Options": "nosniff"}
    wanted = request.if_none_match
    if wanted and any(tag.value in (photo["sha256"], "*") for tag in wanted):
        return web.Response(status=304, headers=headers)
    return web.Response(body=photo["data"], content_type=photo["content_type"], headers=headers)

