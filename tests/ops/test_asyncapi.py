"""/asyncapi.json: AsyncAPI 3.0 of /ws, generated from the channel registry."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from backend import keys


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return found + [ref for item in value.values() for ref in _refs(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in _refs(item)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        assert part in node, f"{ref} does not resolve"
        node = node[part]
    return node


async def test_asyncapi_lists_every_declared_namespace(client: TestClient) -> None:
    resp = await client.get("/asyncapi.json")
    assert resp.status == 200 and resp.content_type == "application/json"
    doc = await resp.json()
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    server = doc["servers"]["ws"]
    assert server["protocol"] == "ws" and server["pathname"] == "/ws" and server["host"] == f"{client.host}:{client.port}"
    namespaces = client.app[keys.CHANNELS].namespaces()
    assert {ns.name for ns in namespaces} >= {"cars", "dashboard", "user", "chat", "callup", "app"}
    for namespace in namespaces:
        channel = doc["channels"][namespace.name]
        assert channel["address"].split(":")[0] == namespace.name
        assert channel["messages"], namespace.name
        assert channel["x-stream"] == namespace.stream and channel["x-presence"] == namespace.presence
        operation = doc["operations"][f"receive.{namespace.name}"]
        assert operation["action"] == "receive" and operation["channel"] == {"$ref": f"#/channels/{namespace.name}"}
    assert doc["channels"]["chat"]["address"] == "chat:{id}" and "id" in doc["channels"]["chat"]["parameters"]
    assert doc["channels"]["callup"]["address"] == "callup:app:{id}"
    # Every reference resolves inside the document.
    for ref in _refs(doc):
        _resolve(doc, ref)


async def test_asyncapi_payloads_come_from_the_models(client: TestClient) -> None:
    doc = await (await client.get("/asyncapi.json")).json()
    messages = doc["components"]["messages"]
    updated = messages["dashboard.car.updated"]["payload"]
    assert updated["properties"]["event"] == {"const": "car.updated"}
    assert "offset" in updated["required"]                          # a stream event (SPEC §12.1)
    car = _resolve(doc, updated["properties"]["data"]["$ref"])
    assert {"id", "number", "state", "lat", "lon"} <= set(car["properties"])
    order = messages["dashboard.order.status"]["payload"]["properties"]["data"]
    assert order["required"] == ["id", "status", "updated_at"] and "code" not in order["properties"]
    typing = messages["chat.typing"]["payload"]
    assert "offset" not in typing["properties"]                     # ephemeral: no offset, never kept
    assert "presence.joined" in doc["channels"]["dashboard"]["messages"]
    # Client frames are the models /ws validates with, domain commands included.
    sent = {ref["$ref"].rsplit("/", 1)[1] for ref in doc["operations"]["send.frames"]["messages"]}
    assert {"client.subscribe", "client.auth", "client.ping", "client.send"} <= sent
    subscribe = messages["client.subscribe"]["payload"]
    assert "since" in subscribe["properties"] and "channel" in subscribe["required"]


async def test_docs_link_to_asyncapi(client: TestClient) -> None:
    page = await (await client.get("/docs")).text()
    assert 'href="/asyncapi.json"' in page
