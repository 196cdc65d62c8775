"""Fixtures: real PostgreSQL and Redis for the session, a fresh database per test, app instances."""

from __future__ import annotations

import dataclasses
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from backend.app import create_app
from backend.auth.tokens import issue_access
from backend.auth.users import create_user
from backend.config import Config
from backend.db import make_engine
from tests.services import EmbeddedServers, Services

AppFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture(scope="session")
def embedded() -> Iterator[EmbeddedServers]:
    """The session's PostgreSQL and Redis (embedded unless TEST_DATABASE_URL / TEST_REDIS_URL)."""
    servers = EmbeddedServers()
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()


@pytest.fixture(scope="session")
async def services(embedded: EmbeddedServers) -> AsyncIterator[Services]:
    svc = Services(admin_url=embedded.pg_url, redis_url=embedded.redis_url, disposable=embedded.owns_postgres)
    await svc.prepare_template()
    yield svc
    await svc.close()
    await svc.drop_all()


@pytest.fixture
async def config(services: Services) -> AsyncIterator[Config]:
    """A fresh migrated database and a private Redis key prefix for this test."""
    database_url = await services.fresh_database()
    yield Config(
        database_url=database_url,
        redis_url=services.redis_url,
        redis_prefix=f"t{uuid.uuid4().hex[:8]}:",
        jwt_keys=(("k1", "test-secret-" + uuid.uuid4().hex),),
        ws_heartbeat=5.0,
        # The real argon2id, with cheaper parameters so hundreds of test users stay fast.
        argon2_memory_kib=1024,
        argon2_time_cost=1,
        sweep_interval=0.2,
        callup_sim_delay=0.1,
        instance="",
    )
    services.discard(database_url)     # after the test's apps and engines are closed: they use `config`


SECRET_KEYS = frozenset({"password", "password_hash"})


def _field_messages(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def secret_keys_in(value: Any, where: str = "$", error: bool = False) -> list[str]:
    """Paths of every `password` / `password_hash` key at any depth of a JSON value.

    In an error body (`error`), `{"password": ["message", ...]}` is a DRF field error, not a secret.
    """
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in SECRET_KEYS and not (error and _field_messages(item)):
                found.append(f"{where}.{key}")
            found += secret_keys_in(item, f"{where}.{key}", error)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += secret_keys_in(item, f"{where}[{index}]", error)
    return found


def password_guard() -> aiohttp.TraceConfig:
    """A client trace that fails the test on any JSON response carrying a password (SPEC §2.1)."""
    async def check(session: aiohttp.ClientSession, ctx: Any, params: aiohttp.TraceRequestEndParams) -> None:
        response = params.response
        # /openapi.json names the `password` fields of request schemas; it describes, never holds, values.
        if response.status == 101 or "json" not in response.content_type or response.url.path == "/openapi.json":
            return
        body = await response.read()     # cached: the test reads the same bytes afterwards
        try:
            data = json.loads(body)
        except ValueError:
            return
        leaked = secret_keys_in(data, error=response.status >= 400)
        assert not leaked, f"{params.method} {params.url} returned a secret: {leaked}"

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(check)
    return trace


class GuardedWebSocket(aiohttp.ClientWebSocketResponse):
    """The client side of /ws that fails the test on any frame carrying a password (SPEC §2.1)."""

    async def receive(self, timeout: float | None = None) -> aiohttp.WSMessage:  # noqa: ASYNC109 — overrides aiohttp's own signature
        message = await super().receive(timeout)
        if message.type is aiohttp.WSMsgType.TEXT:
            try:
                data = json.loads(message.data)
            except ValueError:
                return message
            leaked = secret_keys_in(data, error=isinstance(data, dict) and data.get("type") == "error")
            assert not leaked, f"a websocket frame carried a secret: {leaked}"
        return message


@pytest.fixture
def aiohttp_client(aiohttp_client: Callable[..., Awaitable[TestClient]]) -> Callable[..., Awaitable[TestClient]]:
    """The plugin's factory, every client carrying the password guard (a suite-wide check) on HTTP
    responses and websocket frames alike."""
    async def start(app: Any, **kwargs: Any) -> TestClient:
        kwargs["trace_configs"] = [*kwargs.get("trace_configs", []), password_guard()]
        kwargs.setdefault("ws_response_class", GuardedWebSocket)
        return await aiohttp_client(app, **kwargs)
    return start


@pytest.fixture
def make_client(aiohttp_client: Callable[..., Awaitable[TestClient]], config: Config) -> AppFactory:
    """Start one more app instance (same database and Redis unless told otherwise)."""
    async def start(cfg: Config | None = None, *, setup: Callable[[web.Application], None] | None = None,
                    **overrides: object) -> TestClient:
        chosen = dataclasses.replace(cfg or config, **overrides)  # type: ignore[arg-type]
        app = create_app(chosen)
        if setup is not None:
            setup(app)
        return await aiohttp_client(app)
    return start


@pytest.fixture
async def client(make_client: AppFactory) -> TestClient:
    """One app instance over real HTTP."""
    return await make_client()


@pytest.fixture
async def two_apps(make_client: AppFactory) -> tuple[TestClient, TestClient]:
    """Two instances on one database and one Redis, like two processes behind a balancer."""
    return await make_client(), await make_client()


@dataclasses.dataclass
class TestUser:
    """A real user row with a real access token."""

    __test__ = False      # a fixture value, not a test class (pytest would try to collect it)

    id: int
    login: str
    password: str
    role: str
    role_id: int
    token: str
    jti: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


UserFactory = Callable[..., Awaitable[TestUser]]


@pytest.fixture
async def make_user(config: Config) -> AsyncIterator[UserFactory]:
    """Create users through the real domain function (argon2id) and sign them a real token."""
    assert config.database_url
    engine = make_engine(config.database_url, pool_size=2, max_overflow=2)
    numbers = itertools.count(1)

    async def make(role: str = "driver", login: str | None = None, password: str = "secret-pass-1",
                   client: str = "web", **fields: Any) -> TestUser:
        login = login or f"{role}{next(numbers)}"
        row = await create_user(engine, config, login=login, password=password, role=role, **fields)
        token = issue_access(config, user_id=row["id"], login=row["login"], role_id=row["role_id"],
                             password_hash=row["password_hash"], client=client)
        return TestUser(id=row["id"], login=login, password=password, role=role, role_id=row["role_id"],
                        token=token.token, jti=token.jti)

    yield make
    await engine.dispose()


@pytest.fixture
async def admin(make_user: UserFactory) -> TestUser:
    return await make_user(role="admin")
