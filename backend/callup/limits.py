"""The order-creation limits (SPEC §6.2, §11.21): per phone across all apps and per app, in Redis.

Both windows are checked and counted by one Lua script, which Redis runs atomically: no two
requests on any number of instances can both take the last slot, and a refused request counts
in neither window (so a phone refused for one app does not spend another app's rate, and the
app rate counts order creations only).

Every counter shares one hash tag (`{<prefix>callup:limit}`), so the script's keys are in one
slot of a Redis Cluster (SPEC §13.1); it keeps the two windows exact where splitting the script
would refuse requests while another one held a slot it then gave back. All order creations
then count on one shard, which holds far more than flash calls can cost.
"""

from __future__ import annotations

from collections.abc import Sequence

from backend.config import Rate
from backend.errors import too_many
from backend.kv import KV

# KEYS: the counters; ARGV: limit, window seconds for each key in turn.
# Returns 0 when counted, else the seconds until the first full window ends.
_ADMIT = """
for i, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  if count >= tonumber(ARGV[2 * i - 1]) then
    local ttl = redis.call('TTL', key)
    if ttl < 1 then ttl = tonumber(ARGV[2 * i]) end
    return ttl
  end
end
for i, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then
    redis.call('EXPIRE', key, ARGV[2 * i])
  end
end
return 0
"""


def _tag(prefix: str) -> str:
    return "{" + prefix + "callup:limit}"


def phone_key(prefix: str, phone: str) -> str:
    return f"{_tag(prefix)}:phone:{phone}"


def app_key(prefix: str, app_id: int) -> str:
    return f"{_tag(prefix)}:app:{app_id}"


async def admit(redis: KV, windows: Sequence[tuple[str, Rate]]) -> None:
    """Count one event in every window, or none of them and raise 429 with Retry-After."""
    args: list[int] = []
    for _, rate in windows:
        args += [rate.count, rate.seconds]
    wait = await redis.eval(_ADMIT, len(windows), *(key for key, _ in windows), *args)  # type: ignore[misc]
    if int(wait):
        raise too_many(int(wait))


async def admit_order(redis: KV, prefix: str, app_id: int, phone: str, phone_rate: Rate,
                      app_rate: Rate) -> None:
    """Take one order creation from the phone's and the app's windows (SPEC §11.21)."""
    await admit(redis, [(phone_key(prefix, phone), phone_rate), (app_key(prefix, app_id), app_rate)])
