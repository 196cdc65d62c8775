"""Login failure limits (SPEC §2.2, §11.5): per account and per address, in Redis, on both token logins."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from backend.config import Rate
from tests.conftest import AppFactory, UserFactory

# (path, body builder, status of a plain failure): seed 001 answers 401, seed 003 answers 422.
SURFACES = [
    ("/api/auth/login/", lambda ident, pw: {"login": ident, "password": pw}, 401),
    ("/auth/login", lambda ident, pw: {"identifier": ident, "password": pw}, 422),
]


async def attempt(client: TestClient, surface: tuple[str, Any, int], identifier: str, password: str,
                  address: str = "10.0.0.1") -> Any:
    path, body, _ = surface
    return await client.post(path, json=body(identifier, password), headers={"X-Forwarded-For": address})


@pytest.mark.parametrize("surface", SURFACES, ids=["api", "auth"])
async def test_per_account_even_from_new_addresses(make_client: AppFactory, make_user: UserFactory,
                                                   surface: tuple[str, Any, int]) -> None:
    client = await make_client(trust_proxy=True)
    user = await make_user()
    for number in range(5):                      # five failures, each from another address
        resp = await attempt(client, surface, user.login, "wrong-password", f"10.0.1.{number}")
        assert resp.status == surface[2]
    # The 6th attempt is refused even with the right password and from a fresh address.
    resp = await attempt(client, surface, user.login, user.password, "10.0.2.1")
    assert resp.status == 429
    assert 0 < int(resp.headers["Retry-After"]) <= 900
    assert (await resp.json())["code"] == "rate_limited"
    # Accounts are counted case-insensitively: the same login in capitals is the same account.
    resp = await attempt(client, surface, user.login.upper(), user.password, "10.0.2.2")
    assert resp.status == 429
    other = await make_user()
    assert (await attempt(client, surface, other.login, other.password, "10.0.2.3")).status == 200


@pytest.mark.parametrize("surface", SURFACES, ids=["api", "auth"])
async def test_per_address_across_accounts(make_client: AppFactory, make_user: UserFactory,
                                           surface: tuple[str, Any, int]) -> None:
    # LOGIN_ADDRESS_LIMIT is 50/900 by default; 5 keeps the test short (tests/auth/test_login_races.py
    # checks the default is the looser one).
    client = await make_client(trust_proxy=True, login_address_limit=Rate(5, 900))
    victim = await make_user()
    for number in range(5):                      # five accounts, one address
        resp = await attempt(client, surface, f"nobody{number}", "wrong-password", "10.0.3.1")
        assert resp.status == surface[2]
    resp = await attempt(client, surface, victim.login, victim.password, "10.0.3.1")
    assert resp.status == 429 and int(resp.headers["Retry-After"]) > 0
    # Another address is not affected.
    assert (await attempt(client, surface, victim.login, victim.password, "10.0.3.2")).status == 200


async def test_forwarded_for_is_ignored_unless_trusted(make_client: AppFactory, make_user: UserFactory) -> None:
    client = await make_client(login_address_limit=Rate(5, 900))
    victim = await make_user()
    for number in range(5):                      # spoofed addresses: all count against the real peer
        resp = await attempt(client, SURFACES[1], f"ghost{number}", "wrong-password", f"192.0.2.{number}")
        assert resp.status == 422
    resp = await attempt(client, SURFACES[1], victim.login, victim.password, "192.0.2.99")
    assert resp.status == 429


async def test_limit_is_shared_by_instances(two_apps: tuple[TestClient, TestClient],
                                            make_user: UserFactory) -> None:
    a, b = two_apps
    user = await make_user()
    for client, surface in zip((a, b, a, b, a), (SURFACES * 3)[:5], strict=True):
        resp = await attempt(client, surface, user.login, "wrong-password")
        assert resp.status == surface[2]
    assert (await attempt(b, SURFACES[1], user.login, user.password)).status == 429
    assert (await attempt(a, SURFACES[0], user.login, user.password)).status == 429


async def test_four_failures_still_let_the_right_password_in(client: TestClient, make_user: UserFactory) -> None:
    user = await make_user()
    for _ in range(4):
        assert (await attempt(client, SURFACES[1], user.login, "wrong-password")).status == 422
    assert (await attempt(client, SURFACES[1], user.login, user.password)).status == 200


async def test_every_name_of_one_account_shares_its_counter(make_client: AppFactory,
                                                            make_user: UserFactory) -> None:
    """Regression: the account counter was keyed by the raw identifier, so login, email and each
    spelling of the phone were five separate budgets for guessing one password."""
    client = await make_client(trust_proxy=True)
    user = await make_user(email="Victim@Example.com", phone="+79001234567")
    surface = SURFACES[1]          # /auth/login takes login, email or phone
    names = [user.login, "victim@example.com", "+79001234567", "79001234567", "89001234567"]
    for number, name in enumerate(names):
        resp = await attempt(client, surface, name, "wrong-password", f"10.0.5.{number}")
        assert resp.status == 422, name
    resp = await attempt(client, surface, user.login, user.password, "10.0.6.1")
    assert resp.status == 429
