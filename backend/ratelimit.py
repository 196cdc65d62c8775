"""Fixed-window counters in Redis, shared by every instance (login attempts, SPEC §2.2).

A slot is taken *before* the guarded work (an argon2 verification) by one atomic script per
counter, so parallel attempts on any number of instances cannot all pass a check made before any
of them was counted. Each script call touches one key, so every counter may live on its own
shard of a Redis Cluster: the non-transactional pipeline of `take` is split per node by the
cluster client, still one round trip per node (SPEC §13.1).
"""

from __future__ import annotations

from collections.abc import Sequence

from backend.config import Rate
from backend.errors import too_many
from backend.kv import KV

# KEYS[1]: the counter; ARGV: limit, window seconds. The window starts with its first slot.
# Returns 0 when a slot was taken; when the window is full, the seconds until it ends (nothing is
# counted then, so attempts refused with 429 do not stretch anybody's lock-out).
_TAKE = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= tonumber(ARGV[1]) then
  local ttl = redis.call('TTL', KEYS[1])
  if ttl < 1 then ttl = tonumber(ARGV[2]) end
  return ttl
end
redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS[1]: the counter. Only an existing, positive counter goes down: after its window ended a
# plain DECR would create a key at -1 without a TTL.
_GIVE_BACK = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then
  redis.call('DECR', KEYS[1])
end
return count
"""

Window = tuple[str, Rate]


async def take(redis: KV, windows: Sequence[Window]) -> list[str]:
    """Take one slot in every window, or none: 429 with Retry-After when any window is full.

    Returns the keys taken, for `give_back` when the guarded attempt turns out not to count.
    One round trip; a refusal costs a second one to return the slots the other windows gave.
    """
    async with redis.pipeline(transaction=False) as pipe:
        for key, rate in windows:
            pipe.eval(_TAKE, 1, key, rate.count, rate.seconds)
        waits = [int(wait) for wait in await pipe.execute()]
    taken = [key for (key, _), wait in zip(windows, waits, strict=True) if not wait]
    if len(taken) < len(windows):
        await give_back(redis, taken)
        raise too_many(max(waits))
    return taken


async def give_back(redis: KV, keys: Sequence[str]) -> None:
    """Return slots taken by `take` (a login whose password was right is not a failure)."""
    if not keys:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.eval(_GIVE_BACK, 1, key)
        await pipe.execute()
