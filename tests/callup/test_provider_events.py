"""POST /v1/provider/events (SPEC §6.4, §11.17): HMAC-signed outcomes, idempotent, no app token needed."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

from aiohttp.test_utils import TestClient

from backend import keys
from backend.callup.calls import sign
from tests.callup.conftest import TestApp, create_order, error_of, signed_event, statuses, wait_for_status


async def slow_client(make_client) -> TestClient:
    """An instance whose simulated calls never finish during the test, so callbacks decide."""
    return await make_client(callup_sim_delay=30)


async def test_signed_callback_applies_the_outcome(make_client, app_a: TestApp) -> None:
    client = await slow_client(make_client)
    order = await create_order(client, app_a)
    await wait_for_status(client, order["id"], "calling")
    resp = await signed_event(client, {"order_id": order["id"], "status": "failed", "reason": "busy"})
    assert resp.status == 200
    assert await resp.json() == {"data": {"applied": True, "status": "failed"}, "errors": None}
    assert await statuses(client, order["id"]) == ["created", "calling", "failed"]


async def test_replays_and_older_states_are_ignored(make_client, app_a: TestApp) -> None:
    client = await slow_client(make_client)
    order = await create_order(client, app_a)
    event = {"order_id": order["id"], "status": "called", "reason": None}
    assert (await (await signed_event(client, event)).json())["data"] == {"applied": True, "status": "called"}
    for body in (event, {**event, "status": "failed"}):           # a replay, then a sibling arriving late
        resp = await signed_event(client, body)
        assert resp.status == 200
        assert (await resp.json())["data"] == {"applied": False, "status": "called"}
    assert (await statuses(client, order["id"])).count("called") == 1
    # The background call task's own `calling`, if it comes after the callback, is ignored as well.
    assert "failed" not in await statuses(client, order["id"])


async def test_callback_after_verification_changes_nothing(make_client, app_a: TestApp) -> None:
    client = await slow_client(make_client)
    order = await create_order(client, app_a, code="8642")
    assert (await client.get(f"/v1/auth/{order['id']}/8642", headers=app_a.headers)).status == 200
    resp = await signed_event(client, {"order_id": order["id"], "status": "called"})
    assert (await resp.json())["data"] == {"applied": False, "status": "verified"}


async def test_bad_or_missing_signature_is_403(client: TestClient, app_a: TestApp) -> None:
    order = await create_order(client, app_a)
    raw = json.dumps({"order_id": order["id"], "status": "failed"}).encode()
    other = "sha256=" + hmac.new(b"another secret", raw, hashlib.sha256).hexdigest()
    for signature in ("", "sha256=", other, other.removeprefix("sha256="), "sha1=" + "0" * 40, "sha256=zz"):
        resp = await signed_event(client, raw, signature=signature)
        assert resp.status == 403, signature
        assert error_of(await resp.json())[0] == "invalid_signature"
    resp = await client.post("/v1/provider/events", data=raw, headers={"Content-Type": "application/json"})
    assert resp.status == 403
    assert "failed" not in await statuses(client, order["id"])


async def test_signature_covers_the_exact_bytes(client: TestClient, app_a: TestApp) -> None:
    order = await create_order(client, app_a, "79001230000")       # the simulated call will fail
    raw = json.dumps({"order_id": order["id"], "status": "failed"}).encode()
    signature = sign(client.app[keys.CONFIG].callup_provider_secret, raw)
    resp = await signed_event(client, raw.replace(b"failed", b"called"), signature=signature)
    assert resp.status == 403
    assert "called" not in await statuses(client, order["id"])
    assert (await signed_event(client, raw, signature=signature.upper().replace("SHA256=", "sha256="))).status == 200


async def test_signed_but_bad_bodies(client: TestClient) -> None:
    cases = [({"order_id": str(uuid.uuid4()), "status": "called"}, 404, "order_not_found"),
             ({"order_id": "nope", "status": "called"}, 400, "validation_error"),
             ({"order_id": str(uuid.uuid4()), "status": "verified"}, 400, "validation_error"),
             (b"{not json", 400, "parse_error"),
             (b"[]", 400, "validation_error")]
    for body, status, code in cases:
        resp = await signed_event(client, body)
        assert resp.status == status, body
        assert error_of(await resp.json())[0] == code
    resp = await signed_event(client, {"order_id": str(uuid.uuid4()), "status": "called"}, content_type="text/plain")
    assert resp.status == 415


async def test_app_token_is_not_needed_but_a_bad_one_is_still_refused(client: TestClient, app_a: TestApp) -> None:
    order = await create_order(client, app_a)
    assert (await signed_event(client, {"order_id": order["id"], "status": "called"})).status == 200
    raw = b'{"order_id": "x", "status": "called"}'
    resp = await client.post("/v1/provider/events", data=raw,
                             headers={"Content-Type": "application/json", "X-Application-Token": "bogus"})
    assert resp.status == 403 and error_of(await resp.json())[0] == "access_denied"
