"""SPEC §8.4: with Redis lost, REST keeps working on Postgres; what needs Redis answers 503 in style."""

from __future__ import annotations

import asyncio
from pathlib import Path

from backend.embedded import EmbeddedValkey, free_port
from tests.conftest import AppFactory, UserFactory


async def test_bearer_rest_and_logins_work_while_redis_is_down(make_client: AppFactory, make_user: UserFactory,
                                                              tmp_path: Path) -> None:
    valkey = EmbeddedValkey(tmp_path / "valkey", port=free_port(), persist=False)
    url = valkey.start()
    try:
        client = await make_client(redis_url=url)
        driver = await make_user("driver")
        cookie_user = await make_user("client")
        signin = await client.post("/profile/signin", json={"login": cookie_user.login,
                                                            "password": cookie_user.password})
        assert signin.status == 200
        await asyncio.to_thread(valkey.stop)

        # Bearer reads: the deny-list cannot be checked, everything Postgres knows still is.
        me = await client.get("/api/auth/me/", headers=driver.headers)
        assert me.status == 200 and (await me.json())["login"] == driver.login
        assert (await client.get("/api/passenger-cars/", headers=driver.headers)).status == 200
        assert (await client.get("/auth/me", headers=driver.headers)).status == 200

        # Logins issue tokens (the failure limits are not counted) and those tokens work.
        login = await client.post("/api/auth/login/", json={"login": driver.login, "password": driver.password})
        assert login.status == 200
        token = (await login.json())["access"]
        assert (await client.get("/api/auth/me/", headers={"Authorization": f"Bearer {token}"})).status == 200
        wrong = await client.post("/api/auth/login/", json={"login": driver.login, "password": "wrong-pass-1"})
        assert wrong.status == 401 and (await wrong.json())["code"] == "authentication_failed"

        # Cookie sessions live in Redis only: the session is unreadable, so the caller is anonymous
        # (401 in the surface's style, no 500, no cookie naming a session that was never stored).
        profile = await client.get("/profile")
        assert profile.status == 401 and (await profile.json())["code"] == "not_authenticated"
        assert "X-Request-ID" in profile.headers
        fresh = await client.get("/profile", cookies={})
        assert "sessid" not in fresh.cookies

        # Signing in on the cookie surface needs Redis: 503 in the surface's style.
        again = await client.post("/profile/signin", json={"login": cookie_user.login,
                                                           "password": cookie_user.password})
        assert again.status == 503
        assert (await again.json()) == {"detail": "Сервис временно недоступен. Повторите запрос позже.",
                                        "code": "service_unavailable"}

        await asyncio.to_thread(valkey.start)
        back = await client.post("/profile/signin", json={"login": cookie_user.login,
                                                          "password": cookie_user.password})
        assert back.status == 200
        assert (await client.get("/profile")).status == 200
    finally:
        valkey.stop()
