"""Data of scripts/bench/rest.py: the wrk scenarios (Lua) and the seed (users, cars, chats, waybills)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

USERS, CARS, MESSAGES = 64, 200, 500


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    lua: str                      # the wrk script body (after the generated `data` table)


GET_LUA = """
local path = "{path}"
local auth = {auth}
function request() return wrk.format("GET", path, auth and {{Authorization = "Bearer " .. data.tokens[1]}} or nil) end
"""

# One connection per wrk thread, so a thread's requests are strictly sequential and a reply can
# choose the next request (book → cancel that booking → book …).
BOOK_LUA = """
local car, token, booking = 0, nil, nil
function setup(thread) thread:set("i", data.next); data.next = data.next + 1 end
function init(args) car = data.cars[i]; token = data.tokens[i] end
function request()
  local h = {Authorization = "Bearer " .. token, ["Content-Type"] = "application/json"}
  if booking then return wrk.format("POST", "/api/bookings/" .. booking .. "/cancel", h) end
  return wrk.format("POST", "/api/bookings", h, '{"car": ' .. car .. '}')
end
local shown = 0
function response(status, headers, body)
  if status >= 500 then n5 = n5 + 1 end
  if status >= 400 and shown < 1 then shown = shown + 1; io.write("REFUSED " .. status .. " " .. body .. "\\n") end
  if booking then booking = nil return end
  if status == 201 then booking = string.match(body, '"id":%s*(%d+)'); booked = booked + 1 end
end
"""

POST_MESSAGE_LUA = """
local chat, token, k = 0, nil, 0
function setup(thread) thread:set("i", data.next); data.next = data.next + 1 end
function init(args) chat = data.chats[i]; token = data.tokens[i] end
function request()
  k = k + 1
  return wrk.format("POST", "/chats/" .. chat .. "/messages",
    {Authorization = "Bearer " .. token, ["Content-Type"] = "application/json"}, '{"text": "bench message ' .. k .. '"}')
end
"""

RECORD_LUA = """
local waybill, token = 0, nil
function setup(thread) thread:set("i", data.next); data.next = data.next + 1 end
function init(args) waybill = data.waybills[i]; token = data.tokens[i] end
function request()
  return wrk.format("POST", "/api/passenger-car-records/",
    {Authorization = "Bearer " .. token, ["Content-Type"] = "application/json"},
    '{"passenger_car_waybill": ' .. waybill .. ', "target": "bench", "departure_time": "08:00:00", ' ..
    '"arrival_time": "09:00:00", "distance_city_km": 10, "distance_area_km": 5, ' ..
    '"fuel_refueled": "2.000", "fuel_used": "1.500"}')
end
"""

# Every script: globals n5 (5xx) and booked per thread, gathered by done() into one JSON line.
PREFIX_LUA = "n5 = 0\nbooked = 0\nthreads = {}\n"
SUFFIX_LUA = """
local setup1 = setup
function setup(thread) table.insert(threads, thread); if setup1 then setup1(thread) end end
if not response then function response(status) if status >= 500 then n5 = n5 + 1 end end end
function done(summary, latency, requests)
  local s5, b = 0, 0
  for _, t in ipairs(threads) do s5 = s5 + (t:get("n5") or 0); b = b + (t:get("booked") or 0) end
  io.write(string.format('RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d, "5xx": %d, "booked": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout, summary.errors.status, s5, b))
end
"""

SCENARIOS = {
    "live": Scenario("live", "`GET /health/live`", GET_LUA.format(path="/health/live", auth="false")),
    "cars": Scenario("cars", "`GET /api/cars` (200 cars)", GET_LUA.format(path="/api/cars", auth="false")),
    "me": Scenario("me", "`GET /api/auth/me/` (bearer)", GET_LUA.format(path="/api/auth/me/", auth="true")),
    "messages": Scenario("messages", "`GET /chats/{id}/messages?limit=50`", ""),
    "book": Scenario("book", "`POST /api/bookings` + cancel", BOOK_LUA),
    "post-message": Scenario("post-message", "`POST /chats/{id}/messages`", POST_MESSAGE_LUA),
    "record": Scenario("record", "`POST /api/passenger-car-records/`", RECORD_LUA),
}


@dataclasses.dataclass
class Seed:
    tokens: list[str]
    cars: list[int]
    chats: list[int]
    read_chat: int
    waybills: list[int]

    def lua(self) -> str:
        def table(values: list[Any]) -> str:
            return "{" + ", ".join(json.dumps(v) for v in values) + "}"
        return (f"data = {{next = 1, tokens = {table(self.tokens)}, cars = {table(self.cars)}, "
                f"chats = {table(self.chats)}, waybills = {table(self.waybills)}}}\n")


async def seed(database_url: str, secret: str) -> Seed:
    """Users (admins: every permission), 200 free cars, chats with history, one waybill per user."""
    import asyncpg

    from backend.auth.tokens import issue_access
    from backend.config import Config

    config = dataclasses.replace(Config.from_env({"JWT_SECRET": secret}), access_ttl=24 * 3600)
    conn = await asyncpg.connect(database_url)
    try:
        tag = uuid.uuid4().hex[:6]
        role = await conn.fetchval("SELECT id FROM roles WHERE name = 'admin'")
        users = [await conn.fetchval(
            "INSERT INTO users (login, password_hash, role_id, username, name, surname) "
            "VALUES ($1, $2, $3, $1, 'Bench', $4) RETURNING id", f"bench-{tag}-{i}", f"hash-{i}", role, str(i))
            for i in range(USERS)]
        tokens = [issue_access(config, user_id=uid, login=f"bench-{tag}-{i}", role_id=role, password_hash=f"hash-{i}").token
                  for i, uid in enumerate(users)]
        cars = [await conn.fetchval(
            "INSERT INTO passenger_cars (number, brand, model, shared, lat, lon, fuel_level, tariff_per_minute) "
            "VALUES ($1, 'Lada', 'Vesta', true, $2, $3, 40, 9.5) RETURNING id", f"S{tag}{i}",
            55.5 + i / 1000, 37.5 + i / 1000) for i in range(CARS)]
        chats = []
        for i, uid in enumerate(users):
            other = users[(i + 1) % USERS]
            low, high = min(uid, other), max(uid, other)
            chat = await conn.fetchval("INSERT INTO chats (user_low, user_high) VALUES ($1, $2) "
                                       "ON CONFLICT (user_low, user_high) DO UPDATE SET updated_at = now() RETURNING id",
                                       low, high)
            await conn.executemany("INSERT INTO chat_members (chat_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                                   [(chat, low), (chat, high)])
            chats.append(chat)
        await conn.executemany("INSERT INTO messages (chat_id, sender_id, text) VALUES ($1, $2, $3)",
                               [(chats[0], users[0], f"history {k}") for k in range(MESSAGES)])
        waybills = []
        for i, uid in enumerate(users):
            car = await conn.fetchval("INSERT INTO passenger_cars (number) VALUES ($1) RETURNING id", f"W{tag}{i}")
            await conn.execute("INSERT INTO passenger_car_norms (car_id, season, city_norm, area_norm, date) "
                               "VALUES ($1, 'summer', 0.09, 0.11, '2024-09-01')", car)
            await conn.execute("INSERT INTO passenger_car_odometer_fuel (car_id, odometer, fuel, date) "
                               "VALUES ($1, 100000, 40, '2024-09-01')", car)
            waybills.append(await conn.fetchval(
                "INSERT INTO passenger_car_waybills (car_id, driver_id, date, norm_season, upon_issuance) "
                "VALUES ($1, $2, '2024-09-15', 'summer', 40) RETURNING id", car, uid))
    finally:
        await conn.close()
    return Seed(tokens=tokens, cars=cars, chats=chats, read_chat=chats[0], waybills=waybills)


async def release_bookings(database_url: str) -> None:
    """wrk stops mid-cycle: free what the last reservations held before the next target runs."""
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        cars = await conn.fetch("UPDATE bookings SET status = 'cancelled' WHERE status = 'reserved' RETURNING car_id")
        await conn.execute("UPDATE passenger_cars SET state = 'available' WHERE id = any($1::bigint[])",
                           [row["car_id"] for row in cars])
    finally:
        await conn.close()
