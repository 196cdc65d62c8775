"""Channel streams (SPEC §12.1): offsets, epochs and bounded history, assigned by Redis with the publish.

Every key of a channel and its pub/sub name share one hash tag (`{<prefix>rt:chat:5}`), so on a
Redis Cluster a channel's script, its history and its sharded pub/sub live on one shard (§13.1).

    {tag}:m   hash  e = epoch, o = last offset      (kept STREAM_META_TTL past the last publish)
    {tag}:h   stream, entry id `<offset>-0`, fields t = publish time (ms), f = the event frame
    {tag}:i:* idempotency records of POST /api/realtime/publish (SPEC §8.5)

A stream event travels on pub/sub as `<offset> <epoch> <frame>`; an ephemeral one as the bare
frame (it starts with `{`). The frame already holds its `"offset"`, so the hub still writes one
prebuilt frame to every local subscriber and recovery replays byte-identical frames.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from backend.kv import KV, Script
from backend.realtime.const import STREAM_META_TTL

# One round trip per publish, one order for every instance: the offset, the history entry, the
# idempotency record and the PUBLISH happen together or not at all (a Redis script is atomic).
_PUBLISH_ONE = """
local function publish(meta, history, record, frame, name, stream, size, history_ttl, meta_ttl, new_epoch, now,
                       record_ttl, remember)
  if record then
    local seen = redis.call("GET", record)
    if seen then return {0, seen} end
  end
  local offset, epoch, message = 0, "", frame
  if stream == "1" then
    epoch = redis.call("HGET", meta, "e")
    if not epoch then
      -- Keys found missing (first publish, expiry, a flushed Redis): a new epoch, and no history
      -- of an older epoch may be served under it.
      epoch = new_epoch
      redis.call("DEL", history)
      redis.call("HSET", meta, "e", epoch, "o", 0)
    end
    offset = redis.call("HINCRBY", meta, "o", 1)
    local full = string.sub(frame, 1, -2) .. ',"offset":' .. offset .. '}'
    redis.call("XADD", history, "MAXLEN", size, offset .. "-0", "t", now, "f", full)
    redis.call("PEXPIRE", history, history_ttl)
    redis.call("PEXPIRE", meta, meta_ttl)
    message = offset .. " " .. epoch .. " " .. full
  end
  local receivers = redis.call("PUBLISH", name, message)
  if record then
    redis.call("SET", record, offset .. " " .. epoch .. " " .. remember, "PX", record_ttl)
  end
  return {1, offset, epoch, receivers}
end
"""

PUBLISH_LUA = _PUBLISH_ONE + """
-- KEYS[1] meta hash, KEYS[2] history stream, KEYS[3] idempotency record (optional)
-- ARGV[1] frame (a JSON object without its offset), ARGV[2] pub/sub name, ARGV[3] 1 = stream, 0 = ephemeral
-- ARGV[4] history size, ARGV[5] history ttl ms, ARGV[6] meta ttl ms, ARGV[7] epoch if none exists
-- ARGV[8] now ms, ARGV[9] idempotency ttl ms, ARGV[10] result remembered with the record
return publish(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7],
               ARGV[8], ARGV[9], ARGV[10])
"""

# Several publishes in one script run, in order (a single Redis only: on a cluster their keys
# live on several shards). One command instead of a pipeline of one per event: a booking's five
# events spent more CPU in redis-py's pipeline (packing, one reply each) than in the reservation.
PUBLISH_MANY_LUA = _PUBLISH_ONE + """
-- ARGV[1] history size, ARGV[2] history ttl ms, ARGV[3] meta ttl ms, ARGV[4] epoch if none exists
-- ARGV[5] now ms; then per publish i (from 0): KEYS[3i+1] meta, KEYS[3i+2] history,
-- KEYS[3i+3] idempotency record ("" = none), ARGV[5i+6] frame, ARGV[5i+7] pub/sub name,
-- ARGV[5i+8] 1 = stream, ARGV[5i+9] idempotency ttl ms, ARGV[5i+10] result remembered
local results = {}
for i = 0, #KEYS / 3 - 1 do
  local record = KEYS[3 * i + 3]
  if record == "" then record = nil end
  local a = 5 * i + 5
  results[i + 1] = publish(KEYS[3 * i + 1], KEYS[3 * i + 2], record, ARGV[a + 1], ARGV[a + 2], ARGV[a + 3],
                           ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[a + 4], ARGV[a + 5])
end
return results
"""

# The epoch, the top offset and the history after `since`, read at one instant.
READ_LUA = """
-- KEYS[1] meta hash, KEYS[2] history stream
-- ARGV[1] epoch if none exists, ARGV[2] meta ttl ms, ARGV[3] since ("" = the latest ARGV[4]), ARGV[4] count
local epoch = redis.call("HGET", KEYS[1], "e")
if not epoch then
  epoch = ARGV[1]
  redis.call("DEL", KEYS[2])
  redis.call("HSET", KEYS[1], "e", epoch, "o", 0)
  redis.call("PEXPIRE", KEYS[1], ARGV[2])
  return {epoch, 0, {}}
end
local top = tonumber(redis.call("HGET", KEYS[1], "o"))
local count = tonumber(ARGV[4])
local since
if ARGV[3] == "" then since = math.max(top - count, 0) else since = tonumber(ARGV[3]) end
if count <= 0 or since < 0 or since >= top then return {epoch, top, {}} end
return {epoch, top, redis.call("XRANGE", KEYS[2], (since + 1) .. "-0", "+", "COUNT", count)}
"""


def sharded(script: str) -> str:
    """The script for a Redis Cluster: SPUBLISH reaches only the channel's shard (its subscribers'
    one), where PUBLISH would be broadcast to every node. The channel hashes to the slot of the
    script's keys (one hash tag), which Redis requires of an SPUBLISH inside a script."""
    return script.replace('redis.call("PUBLISH"', 'redis.call("SPUBLISH"')


def new_epoch() -> str:
    """A short random epoch; a fresh one per call, since a reused one would pass off new offsets as old."""
    return secrets.token_urlsafe(6)


def split_live(payload: bytes) -> tuple[int | None, bytes | None, bytes]:
    """(offset, epoch, frame) of a pub/sub message; offset and epoch are None for an ephemeral event."""
    if payload[:1] == b"{":
        return None, None, payload
    first = payload.index(b" ")
    second = payload.index(b" ", first + 1)
    return int(payload[:first]), payload[first + 1:second], payload[second + 1:]


@dataclass(frozen=True, slots=True)
class Published:
    """What one publish did: its offset and epoch (0 and "" when ephemeral), or the remembered result."""

    offset: int
    epoch: str
    receivers: int
    first: bool = True                  # False: an idempotency record answered, nothing was published
    remembered: str = ""                # the result the first publish stored with its record


@dataclass(frozen=True, slots=True)
class Call:
    """One run of the publish script: the frame for `channel`, kept in its stream or not, and an
    optional idempotency record (record key, ttl seconds, result to remember)."""

    channel: str
    frame: bytes
    stream: bool
    idempotency: tuple[str, float, str] | None = None


@dataclass(frozen=True, slots=True)
class Position:
    """A channel's epoch and top offset, and the history frames read after some offset."""

    epoch: str
    top: int
    since: int | None = None
    frames: list[bytes] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    recovered: bool = False             # `frames` are every event after `since`, nothing lost


class Streams:
    """The publish script and the history reads of every stream channel."""

    def __init__(self, redis: KV, name: Callable[[str], str], *, history_size: int, history_ttl: float,
                 cluster: bool = False) -> None:
        self._redis = redis
        self._name = name                         # the bus's channel → Redis name mapping (the hash tag)
        self.history_size = history_size
        self.history_ttl = history_ttl
        self._cluster = cluster
        self._script = sharded(PUBLISH_LUA) if cluster else PUBLISH_LUA
        self._publish = Script(redis, self._script)
        self._publish_batch = Script(redis, PUBLISH_MANY_LUA)
        self._read = Script(redis, READ_LUA)

    def keys(self, channel: str) -> tuple[str, str]:
        """The meta hash and the history stream of `channel` (same hash tag as its pub/sub name)."""
        tag = self._name(channel)
        return tag + ":m", tag + ":h"

    def idempotency_key(self, channel: str, event: str, key: str) -> str:
        """A publish's idempotency record, bound to its channel (hash tag) and event (digest)."""
        digest = hashlib.sha256(f"{event}\0{key}".encode()).hexdigest()[:32]
        return f"{self._name(channel)}:i:{digest}"

    async def publish(self, channel: str, frame: bytes, *, stream: bool, idempotency: tuple[str, float, str] | None
                      = None) -> Published:
        """Run the publish script; `idempotency` = (record key, ttl seconds, result to remember).

        Raises Redis errors: the caller decides whether a lost event fails its request.
        """
        keys, args = self._arguments(Call(channel, frame, stream, idempotency))
        return _published(await self._publish(keys=keys, args=args))

    async def publish_many(self, calls: Sequence[Call]) -> list[Published | Exception]:
        """Run the publish script for every call, in order; on a single Redis in one script run.

        On a cluster, one pipeline: one round trip per node, sent in parallel by the cluster
        client. A connection runs its commands in the order sent and all of a channel's keys share
        one slot, hence one node: every channel keeps the order of `calls`. A failed call's error
        is its result; a lost connection raises (the caller drops the events). A single script
        run that fails (a Redis out of memory) raises for every call, though earlier ones may be out.
        """
        if not self._cluster:
            keys, args = self._batch(calls)
            return [_published(result) for result in await self._publish_batch(keys=keys, args=args)]
        async with self._redis.pipeline(transaction=False) as pipe:
            for call in calls:
                keys, args = self._arguments(call)
                # EVAL with the script's text, not EVALSHA: redis-py's cluster pipeline refuses
                # EVALSHA (redis-py#2914), a Script object in a plain pipeline costs a SCRIPT
                # EXISTS round trip per execute, and a server that lost its script cache
                # (restart, SCRIPT FLUSH) could fail some calls of a batch and run later ones.
                pipe.eval(self._script, len(keys), *keys, *args)
            results = await pipe.execute(raise_on_error=False)
        return [result if isinstance(result, Exception) else _published(result) for result in results]

    def _batch(self, calls: Sequence[Call]) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of PUBLISH_MANY_LUA for `calls`.

        One new epoch serves every channel of the batch that has none: an epoch names one
        incarnation of one channel's stream, so distinct channels may share it.
        """
        keys: list[str] = []
        args: list[Any] = [self.history_size, _ms(self.history_ttl), _ms(STREAM_META_TTL), new_epoch(),
                           int(time.time() * 1000)]
        for call in calls:
            meta, history = self.keys(call.channel)
            record, ttl, remember = call.idempotency if call.idempotency is not None else ("", 0.0, "")
            keys += (meta, history, record)
            args += (call.frame, self._name(call.channel), 1 if call.stream else 0, _ms(ttl), remember)
        return keys, args

    def _arguments(self, call: Call) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of the publish script for `call`."""
        meta, history = self.keys(call.channel)
        keys = [meta, history]
        ttl, remember = 0.0, ""
        if call.idempotency is not None:
            record, ttl, remember = call.idempotency
            keys.append(record)
        return keys, [call.frame, self._name(call.channel), 1 if call.stream else 0, self.history_size,
                      _ms(self.history_ttl), _ms(STREAM_META_TTL), new_epoch(), int(time.time() * 1000), _ms(ttl),
                      remember]

    async def read(self, channel: str, since: int | None = None, epoch: str | None = None,
                   limit: int | None = None) -> Position:
        """The channel's position and, with `since`, the history after it (at most `limit` events).

        `recovered` is true only when the epoch is `epoch` and the history still holds every event
        from since + 1 (or nothing was missed): never when something was lost.
        """
        count = self.history_size if limit is None else limit
        meta, history = self.keys(channel)
        raw_epoch, raw_top, entries = await self._read(keys=[meta, history], args=[
            new_epoch(), _ms(STREAM_META_TTL), "" if since is None else since, count])
        current, top = _text(raw_epoch), int(raw_top)
        oldest = (time.time() - self.history_ttl) * 1000
        held = []                      # (offset, frame) of entries younger than HISTORY_TTL
        for entry_id, fields in entries:
            values = _fields(fields)
            # HISTORY_TTL bounds each event's age, not only the key's idle time.
            if int(values[b"t"]) >= oldest:
                held.append((int(_text(entry_id).partition("-")[0]), values[b"f"]))
        offsets = [offset for offset, _ in held]
        frames = [frame for _, frame in held]
        if since is None:
            return Position(current, top, None, frames, offsets, False)
        if epoch != current or since > top:
            return Position(current, top, since)
        complete = since == top or (bool(offsets) and offsets[0] == since + 1)
        if not complete:
            return Position(current, top, since)
        return Position(current, top, since, frames, offsets, True)


def _published(result: Any) -> Published:
    """The publish script's answer: what it published, or the remembered result of a repeat."""
    if int(result[0]) == 0:
        offset, epoch, remembered = _text(result[1]).split(" ", 2)
        return Published(int(offset), epoch, 0, first=False, remembered=remembered)
    return Published(int(result[1]), _text(result[2]), int(result[3]))


def _fields(fields: object) -> dict[bytes, bytes]:
    """A stream entry's fields (redis-py gives a flat list or a dict depending on the protocol)."""
    if isinstance(fields, dict):
        return {_bytes(k): _bytes(v) for k, v in fields.items()}
    items = list(fields)  # type: ignore[call-overload]
    return {_bytes(items[i]): _bytes(items[i + 1]) for i in range(0, len(items), 2)}


def _bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
