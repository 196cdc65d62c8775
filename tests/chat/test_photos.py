"""Avatars (SPEC §7.2, §11.23): magic-byte checks, size limit, Postgres storage, caching headers."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from backend import keys
from backend.chat.photos import sniff
from backend.chat.tables import photos
from backend.db import read
from tests.chat.conftest import JPEG, PNG
from tests.conftest import AppFactory, TestUser


def form(data: bytes, field: str = "photo", filename: str = "a.png", content_type: str = "image/png",
         ) -> aiohttp.FormData:
    body = aiohttp.FormData()
    body.add_field(field, data, filename=filename, content_type=content_type)
    return body


async def photo_rows(client: TestClient, user_id: int) -> int:
    async with read(client.app[keys.DB]) as conn:
        return int((await conn.execute(select(func.count()).select_from(photos)
                                       .where(photos.c.user_id == user_id))).scalar_one())


@pytest.mark.parametrize(("data", "kind"), [
    (PNG, "image/png"), (JPEG, "image/jpeg"), (b"GIF89a" + b"\x00" * 10, "image/gif"),
    (b"GIF87a" + b"\x00" * 10, "image/gif"), (b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8, "image/webp"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", None), (b"%PDF-1.7", None), (b"", None),
    (b"\x89PNG\r\n\x1a\n", None), (b"RIFF\x10\x00\x00\x00WAVEfmt ", None),
])
def test_sniff_by_magic_bytes(data: bytes, kind: str | None) -> None:
    assert sniff(data) == kind


async def test_upload_then_serve_from_another_instance(two_apps: tuple[TestClient, TestClient],
                                                       alice: TestUser, bob: TestUser) -> None:
    a, b = two_apps
    resp = await a.post("/photos", data=form(PNG), headers=alice.headers)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert set(body) == {"id", "url"} and body["url"] == f"/photos/{alice.id}"
    got = await b.get(body["url"], headers=bob.headers)           # any instance serves it (Postgres)
    assert got.status == 200
    assert await got.read() == PNG
    assert got.content_type == "image/png"
    etag = got.headers["ETag"]
    assert etag.startswith('"') and "no-cache" in got.headers["Cache-Control"]
    cached = await b.get(body["url"], headers={**bob.headers, "If-None-Match": etag})
    assert cached.status == 304
    assert cached.headers["ETag"] == etag and await cached.read() == b""
    profile = await (await b.get(f"/users/{alice.id}", headers=bob.headers)).json()
    assert profile["avatar_url"] == f"/photos/{alice.id}"


async def test_a_new_avatar_replaces_the_old_one(client: TestClient, alice: TestUser) -> None:
    await client.post("/photos", data=form(PNG), headers=alice.headers)
    first = (await client.get(f"/photos/{alice.id}", headers=alice.headers)).headers["ETag"]
    # Any single file field is accepted, and the declared type does not matter: the bytes do.
    resp = await client.post("/photos", data=form(JPEG, field="file", content_type="application/octet-stream"),
                             headers=alice.headers)
    assert resp.status == 201
    got = await client.get(f"/photos/{alice.id}", headers={**alice.headers, "If-None-Match": first})
    assert got.status == 200 and got.content_type == "image/jpeg" and got.headers["ETag"] != first
    assert await photo_rows(client, alice.id) == 1


async def test_refusals(client: TestClient, alice: TestUser, bob: TestUser) -> None:
    two = form(PNG)
    two.add_field("other", PNG, filename="b.png", content_type="image/png")
    with_text = form(b"<html>not an image</html>", content_type="image/png")
    cases = [
        (form(b"<html>not an image</html>", content_type="image/png"), alice.headers, 415, "unsupported_media_type"),
        (two, alice.headers, 400, "too_many_files"),
        (aiohttp.FormData({"note": "no file here"}, default_to_multipart=True), alice.headers, 400, "file_required"),
        (with_text, {}, 401, "not_authenticated"),
    ]
    for data, headers, status, code in cases:
        resp = await client.post("/photos", data=data, headers=headers)
        assert resp.status == status, await resp.text()
        assert (await resp.json())["error"] == code
    as_json = await client.post("/photos", json={"photo": "x"}, headers=alice.headers)
    assert (as_json.status, (await as_json.json())["error"]) == (415, "unsupported_media_type")
    broken = await client.post("/photos", data=b"--x\r\nnonsense", headers={
        **alice.headers, "Content-Type": "multipart/form-data; boundary=zzz"})
    assert broken.status == 400
    no_boundary = await client.post("/photos", data=b"abc", headers={**alice.headers,
                                                                    "Content-Type": "multipart/form-data"})
    assert no_boundary.status == 400
    missing = await client.get(f"/photos/{bob.id}", headers=alice.headers)
    assert (missing.status, (await missing.json())["error"]) == (404, "photo_not_found")
    assert (await client.get(f"/photos/{alice.id}")).status == 401
    assert await photo_rows(client, alice.id) == 0


async def test_size_limit_is_413(make_client: AppFactory, alice: TestUser) -> None:
    default = await make_client()
    big = PNG + b"\x00" * (default.app[keys.CONFIG].max_photo + 1 - len(PNG))
    resp = await default.post("/photos", data=form(big), headers=alice.headers)
    assert resp.status == 413
    assert (await resp.json())["error"] == "request_too_large"
    small = await make_client(max_photo=1024)
    exactly = PNG + b"\x00" * (1024 - len(PNG))
    assert (await small.post("/photos", data=form(exactly), headers=alice.headers)).status == 201
    over = await small.post("/photos", data=form(exactly + b"\x00"), headers=alice.headers)
    assert over.status == 413
    assert await photo_rows(small, alice.id) == 1
