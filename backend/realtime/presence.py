"""Presence (SPEC §12.4): who is subscribed to a channel, across instances, and who is online at all.

Per channel, in Redis (keys extend the channel's hash tag, like its stream):

    {tag}:pz  zset   member `<user id>|<instance>`, score = the entry's deadline (ms)
    {tag}:pi  hash   user id → {"id", "username", "name"} of every user announced present

An instance adds its entry when a user's first local socket joins, removes it when the last one
leaves, and refreshes its entries every PRESENCE_TTL / 3; an entry lives 2/3 of PRESENCE_TTL past
its refresh, so one missed refresh is tolerated and a killed instance's entries are past their
deadline within 2/3 of the TTL. Every instance with local users on a channel sweeps it on the same
tick: the sweep that removes a user's last entry (a script, so exactly one) announces
`presence.left` — within PRESENCE_TTL of the kill. The hash is the "announced present" set: a user
is announced joined when its field is created and left when it is deleted, never twice.

The identity channels (`user:{id}`) are tracked too, without announcements: they answer "does this
user have a live socket on any instance" for the messenger's `online` flag.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

from backend.jsonutil import dumpb, loads
from backend.kv import KV, REDIS_ERRORS, Script, run_script_many
from backend.realtime.const import PRESENCE_JOINED, PRESENCE_LEFT
from backend.realtime.frames import event_frame
from backend.realtime.streams import sharded

log = logging.getLogger("backend.realtime.presence")

Describe = Callable[[int, str | None], Awaitable[dict[str, Any]]]   # (user id, login) → {"id","username","name"}

_MARK = "\0user\0"
REFRESH_BATCH = 256      # channels per pipelined round trip of a refresh (a few hundred commands)

JOIN_LUA = """
-- KEYS[1] zset, KEYS[2] info; ARGV[1] member, ARGV[2] deadline ms, ARGV[3] user id, ARGV[4] user json,
-- ARGV[5] key ttl ms, ARGV[6] pub/sub name, ARGV[7] frame head ("" = do not announce), ARGV[8] frame tail
redis.call("ZADD", KEYS[1], ARGV[2], ARGV[1])
local new = redis.call("HSET", KEYS[2], ARGV[3], ARGV[4])
redis.call("PEXPIRE", KEYS[1], ARGV[5])
redis.call("PEXPIRE", KEYS[2], ARGV[5])
if new == 1 and ARGV[7] ~= "" then redis.call("PUBLISH", ARGV[6], ARGV[7] .. ARGV[4] .. ARGV[8]) end
return new
"""

# Removes entries (this instance's one, or every one past its deadline) and announces the users
# left with no live entry. ARGV[1] = the member to remove ("" = sweep expired ones).
LEAVE_LUA = """
-- KEYS[1] zset, KEYS[2] info; ARGV[1] member or "", ARGV[2] now ms, ARGV[3] pub/sub name,
-- ARGV[4] frame head ("" = do not announce), ARGV[5] frame tail
local gone
if ARGV[1] ~= "" then
  gone = {ARGV[1]}
  redis.call("ZREM", KEYS[1], ARGV[1])
else
  gone = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", "(" .. ARGV[2])
  if #gone == 0 then return 0 end
  redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", "(" .. ARGV[2])
end
local live = {}
for _, member in ipairs(redis.call("ZRANGEBYSCORE", KEYS[1], ARGV[2], "+inf")) do
  live[string.match(member, "^([^|]*)")] = true
end
local left = 0
for _, member in ipairs(gone) do
  local user = string.match(member, "^([^|]*)")
  if not live[user] then
    live[user] = true
    local brief = redis.call("HGET", KEYS[2], user)
    if brief then
      redis.call("HDEL", KEYS[2], user)
      left = left + 1
      if ARGV[4] ~= "" then redis.call("PUBLISH", ARGV[3], ARGV[4] .. brief .. ARGV[5]) end
    end
  end
end
return left
"""


@dataclass(slots=True)
class _Local:
    """One user's sockets on one channel of this instance."""

    sockets: int
    brief: bytes
    announce: bool


class Presence:
    """This instance's presence entries: added, refreshed, removed and swept (see the module doc)."""

    def __init__(self, redis: KV, name: Callable[[str], str], instance: str, ttl: float,
                 describe: Describe, *, cluster: bool = False) -> None:
        self._redis = redis
        self._name = name
        self._instance = instance
        self.ttl = ttl
        self._describe = describe
        self._local: dict[str, dict[int, _Local]] = {}
        # Both scripts announce on the channel: sharded pub/sub on a cluster, like every event.
        self._join = Script(redis, sharded(JOIN_LUA) if cluster else JOIN_LUA)
        self._leave = Script(redis, sharded(LEAVE_LUA) if cluster else LEAVE_LUA)
        self._task: asyncio.Task[None] | None = None

    def _keys(self, channel: str) -> list[str]:
        tag = self._name(channel)
        return [tag + ":pz", tag + ":pi"]

    def _member(self, user_id: int) -> str:
        return f"{user_id}|{self._instance}"

    def _deadline(self) -> int:
        return int((time.time() + self.ttl * 2 / 3) * 1000)

    def _frame(self, channel: str, event: str) -> tuple[bytes, bytes]:
        """The event frame around its data, so a script can put a stored user in between."""
        head, tail = event_frame(channel, event, _MARK).split(dumpb(_MARK))
        return head, tail

    async def enter(self, channel: str, user_id: int, login: str | None, *, announce: bool) -> None:
        """A socket of `user_id` joined `channel`; the user's first one here adds the entry."""
        users = self._local.setdefault(channel, {})
        local = users.get(user_id)
        if local is not None:
            local.sockets += 1
            return
        users[user_id] = local = _Local(1, dumpb({"id": user_id, "username": login or "", "name": ""}), announce)
        if announce:
            # Unannounced entries (the identity channel: "online anywhere") are never listed, so only
            # announced ones cost a directory query: not every user's first socket of a reconnect storm.
            try:
                local.brief = dumpb(await self._describe(user_id, login))
            except Exception:
                # A lookup that failed (database lost) must not refuse the subscription.
                log.warning("presence user not described", exc_info=True)
        try:
            head, tail = self._frame(channel, PRESENCE_JOINED) if announce else (b"", b"")
            await self._join(keys=self._keys(channel), args=[
                self._member(user_id), self._deadline(), user_id, local.brief, int(self.ttl * 1000),
                self._name(channel), head, tail])
        except REDIS_ERRORS:
            log.warning("presence entry not added, Redis unavailable", extra={"channel": channel})

    async def exit(self, channel: str, user_id: int) -> None:
        """A socket of `user_id` left `channel`; the user's last one here removes the entry."""
        users = self._local.get(channel)
        local = users.get(user_id) if users is not None else None
        if users is None or local is None:
            return
        local.sockets -= 1
        if local.sockets > 0:
            return
        del users[user_id]
        if not users:
            del self._local[channel]
        await self._remove(channel, self._member(user_id), local.announce)

    async def _remove(self, channel: str, member: str, announce: bool) -> None:
        head, tail = self._frame(channel, PRESENCE_LEFT) if announce else (b"", b"")
        try:
            await self._leave(keys=self._keys(channel), args=[
                member, int(time.time() * 1000), self._name(channel), head, tail])
        except REDIS_ERRORS:
            # The entry is no longer refreshed: it expires and a sweep announces the leave.
            log.warning("presence entry not removed, Redis unavailable", extra={"channel": channel})

    async def users(self, channel: str) -> list[dict[str, Any]]:
        """Every user with a live entry on `channel`, each once, by id."""
        zset, info = self._keys(channel)
        members = await self._redis.zrangebyscore(zset, int(time.time() * 1000), "+inf")
        ids = sorted({int(_text(member).partition("|")[0]) for member in members})
        if not ids:
            return []
        briefs = await self._redis.hmget(info, [str(user_id) for user_id in ids])
        return [loads(brief) for brief in briefs if brief is not None]

    async def online(self, user_ids: Collection[int]) -> set[int]:
        """The users among `user_ids` with a live socket on any instance (empty when Redis is lost)."""
        wanted = sorted(set(user_ids))
        if not wanted:
            return set()
        now = int(time.time() * 1000)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for user_id in wanted:
                    pipe.zcount(self._keys(f"user:{user_id}")[0], now, "+inf")
                counts = await pipe.execute()
        except REDIS_ERRORS:
            return set()
        return {user_id for user_id, count in zip(wanted, counts, strict=True) if int(count) > 0}

    # ---- the periodic refresh and sweep -------------------------------------------------------
    def start(self) -> None:
        """Start refreshing this instance's entries (inside the app's cleanup context)."""
        self._task = asyncio.create_task(self._run(), name="realtime-presence")

    async def stop(self) -> None:
        """Stop the refresh task (entries left are removed by their sockets' release or expire)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.refresh()
            except REDIS_ERRORS:
                log.warning("presence not refreshed, Redis unavailable")
            except Exception:
                log.exception("presence refresh failed")

    async def refresh(self) -> None:
        """Push this instance's deadlines forward, then sweep the channels it has users on.

        Pipelined, REFRESH_BATCH channels per round trip: every socket's `user:{id}` is a channel,
        so 10k users would otherwise cost 10k round trips per period. Each batch reads the local
        entries when it is sent, so a user who left meanwhile is not written back.
        """
        channels = tuple(self._local)
        deadline, ttl = self._deadline(), int(self.ttl * 1000)
        for start in range(0, len(channels), REFRESH_BATCH):
            async with self._redis.pipeline(transaction=False) as pipe:
                for channel in channels[start:start + REFRESH_BATCH]:
                    users = self._local.get(channel)
                    if users:
                        zset, info = self._keys(channel)
                        pipe.zadd(zset, {self._member(user_id): deadline for user_id in users})
                        pipe.pexpire(zset, ttl)
                        pipe.pexpire(info, ttl)
                await pipe.execute()
        now = int(time.time() * 1000)
        for start in range(0, len(channels), REFRESH_BATCH):
            sweeps = []
            for channel in channels[start:start + REFRESH_BATCH]:
                users = self._local.get(channel)
                if not users:
                    continue        # left meanwhile; whether it announces is known only while it has users
                announce = any(local.announce for local in users.values())
                head, tail = self._frame(channel, PRESENCE_LEFT) if announce else (b"", b"")
                sweeps.append((self._keys(channel), ["", now, self._name(channel), head, tail]))
            # A sweep is idempotent and independent of the others: any order will do.
            for result in await run_script_many(self._redis, self._leave, sweeps):
                if isinstance(result, Exception):
                    raise result


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
