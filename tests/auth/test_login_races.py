"""Login limits under concurrency (SPEC §2.2, §11.5): a slot is taken atomically before the password
is verified, on all four login endpoints, per account (LOGIN_FAILURE_LIMIT) and per address
(LOGIN_ADDRESS_LIMIT, far looser)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from aiohttp.test_utils import TestClient

from backend import keys
from backend.auth.login import account_key
from backend.config import Config, ConfigError, Rate
from tests.conftest import AppFactory, TestUser, UserFactory

# (path, body builder, status of a wrong password) for every login endpoint.
SURFACES = {
    "api": ("/api/auth/login/", lambda ident, pw: {"login": ident, "password": pw}, 401),
    "auth": ("/auth/login", lambda ident, pw: {"identifier": ident, "password": pw}, 422),
    "profile": ("/profile/signin", lambda ident, pw: {"login": ident, "password": pw}, 401),
    "sign-in": ("/sign-in", lambda ident, pw: {"login": ident, "password": pw}, 401),
    "messenger": ("/login", lambda ident, pw: {"email": ident, "password": pw}, 400),
}


async def attempt(client: TestClient, surface: str, identifier: str, password: str,
                  address: str = "10.9.0.1") -> tuple[int, str | None]:
    """(status, Retry-After) of one login; every attempt reads its body so none is left pending."""
    path, body, _ = SURFACES[surface]
    resp = await client.post(path, json=body(identifier, password), headers={"X-Forwarded-For": address})
    await resp.read()
    return resp.status, resp.headers.get("Retry-After")


def check_refusals(results: list[tuple[int, str | None]], window: int = 900) -> None:
    for status, retry_after in results:
        if status == 429:
            assert retry_after is not None and 0 < int(retry_after) <= window


async def account_counter(client: TestClient, user: TestUser) -> int:
    """The account's failure counter as Redis holds it."""
    return int(await client.app[keys.REDIS].get(account_key(client.app, user.login, user.id)) or 0)


@pytest.mark.parametrize("surface", list(SURFACES))
async def test_parallel_wrong_passwords_stop_at_the_limit(make_client: AppFactory, make_user: UserFactory,
                                                          surface: str) -> None:
    """Regression: the counter was read before argon2 and increased after it, so 30 parallel
    wrong passwords were all verified (30 answers of 401, none 429)."""
    client = await make_client(trust_proxy=True)
    user = await make_user(role="client")
    results = await asyncio.gather(*(attempt(client, surface, user.login, "wrong-password", f"10.9.1.{n}")
                                     for n in range(30)))
    statuses = Counter(status for status, _ in results)
    assert statuses == {SURFACES[surface][2]: 5, 429: 25}
    check_refusals(results)
    assert await account_counter(client, user) == 5
    # The window is full: the right password is refused as well (SPEC §11.5).
    assert (await attempt(client, surface, user.login, user.password, "10.9.2.1"))[0] == 429


async def test_right_password_racing_wrong_ones(make_client: AppFactory, make_user: UserFactory) -> None:
    """Regression: 19 wrong + 1 right password in parallel all passed the check, and the right one got in.

    Which of them reach argon2 first is the scheduler's business; what holds for every order is
    that at most 5 wrong passwords are ever verified, that the right one is refused exactly when
    five wrong ones had taken every slot before it was counted, and that the counter holds the
    verified failures only (the right password gave its slot back).
    """
    client = await make_client(trust_proxy=True)
    for round_, position in enumerate((0, 10, 19)):      # the right password first, amid, last
        user = await make_user(role="client")
        tries = [attempt(client, "api", user.login, "wrong-password", f"10.9.{round_}.{n}") for n in range(19)]
        tries.insert(position, attempt(client, "api", user.login, user.password, f"10.9.{round_}.99"))
        results = await asyncio.gather(*tries)
        right = results.pop(position)[0]
        wrong = Counter(status for status, _ in results)
        assert right in (200, 429)
        assert set(wrong) <= {401, 429} and wrong[401] <= 5
        if right == 429:
            assert wrong[401] == 5           # refused only because five failures were counted first
        check_refusals(results)
        assert await account_counter(client, user) == wrong[401]


async def test_full_window_refuses_a_parallel_burst_including_the_right_password(
        make_client: AppFactory, make_user: UserFactory) -> None:
    client = await make_client(trust_proxy=True)
    user = await make_user(role="client")
    for number in range(5):
        assert (await attempt(client, "profile", user.login, "wrong-password", f"10.9.3.{number}"))[0] == 401
    burst = [attempt(client, "profile", user.login, "wrong-password", f"10.9.4.{n}") for n in range(19)]
    burst.append(attempt(client, "profile", user.login, user.password, "10.9.4.99"))
    results = await asyncio.gather(*burst)
    assert [status for status, _ in results] == [429] * 20
    check_refusals(results)
    assert await account_counter(client, user) == 5       # refused attempts count in no window


async def test_a_right_password_gives_its_slot_back(client: TestClient, make_user: UserFactory) -> None:
    user = await make_user(role="client")
    for _ in range(4):
        assert (await attempt(client, "messenger", user.login, "wrong-password"))[0] == 400
    assert (await attempt(client, "messenger", user.login, user.password))[0] == 200
    # Four failures are counted, not five: one more wrong password is still answered normally.
    assert (await attempt(client, "messenger", user.login, "wrong-password"))[0] == 400
    status, retry_after = await attempt(client, "messenger", user.login, user.password)
    assert status == 429 and retry_after is not None


async def test_address_limit_is_looser_than_the_account_limit(make_client: AppFactory,
                                                              make_user: UserFactory) -> None:
    """LOGIN_ADDRESS_LIMIT defaults to 50/900: an office behind one NAT address does not lock
    itself out after 5 mistakes, yet a guesser spraying names from one address stops at 50."""
    client = await make_client(trust_proxy=True)
    assert client.app[keys.CONFIG].login_address_limit == Rate(50, 900)
    colleague = await make_user(role="client")
    office = "10.9.5.1"
    for number in range(6):                  # more than one account's limit, over six names
        assert (await attempt(client, "auth", f"typo{number}", "wrong-password", office))[0] == 422
    assert (await attempt(client, "auth", colleague.login, colleague.password, office))[0] == 200
    # 6 failures counted for the address; 60 parallel names take the remaining 44 slots and no more.
    results = await asyncio.gather(*(attempt(client, "auth", f"spray{n}", "wrong-password", office)
                                     for n in range(60)))
    assert Counter(status for status, _ in results) == {422: 44, 429: 16}
    check_refusals(results)
    status, retry_after = await attempt(client, "auth", colleague.login, colleague.password, office)
    assert status == 429 and retry_after is not None and 0 < int(retry_after) <= 900
    # Another address is not affected.
    assert (await attempt(client, "auth", colleague.login, colleague.password, "10.9.5.2"))[0] == 200


async def test_refused_attempts_count_in_no_window(make_client: AppFactory, make_user: UserFactory) -> None:
    client = await make_client(trust_proxy=True, login_address_limit=Rate(3, 900))
    user = await make_user()
    for _ in range(3):
        assert (await attempt(client, "api", user.login, "wrong-password", "10.9.6.1"))[0] == 401
    for _ in range(5):                       # the address is full: refused, and not counted on the account
        assert (await attempt(client, "api", user.login, "wrong-password", "10.9.6.1"))[0] == 429
    assert await account_counter(client, user) == 3
    assert [(await attempt(client, "api", user.login, "wrong-password", "10.9.6.2"))[0] for _ in range(3)] \
        == [401, 401, 429]


def test_login_address_limit_is_read_from_the_environment() -> None:
    assert Config.from_env({}).login_address_limit == Rate(50, 900)
    assert Config.from_env({"LOGIN_ADDRESS_LIMIT": "20/60"}).login_address_limit == Rate(20, 60)
    for bad in ("50", "0/900", "x/y", "50/-1"):
        with pytest.raises(ConfigError, match="LOGIN_ADDRESS_LIMIT"):
            Config.from_env({"LOGIN_ADDRESS_LIMIT": bad})
