"""Stream positions an instance knows without asking Redis (SPEC §12.1, §12.2).

A `subscribe` without `since` needs only the channel's epoch and top offset. Reading them from
Redis for each subscriber made a reconnect storm of 10k sockets run one read after another for
its whole length (bench: about a third of the server's CPU on the connect path). But once one
read is anchored in an unbroken live stream, the instance can follow the top itself: every event
of the channel reaches `deliver` in offset order, so the last offset delivered is the top any
subscriber joining now must be given — everything after it will reach that subscriber live.

A tip is kept only while that holds:
- the bus vouches for the channel's pub/sub (`Bus.session`: subscribed, confirmed, and the same
  connection as when the tip was anchored — a reconnect may have lost events);
- the channel never emptied (its last local subscriber leaving drops the tip: the bus stops
  listening);
- events came in order: a gap, or an epoch other than the tip's, drops it (the next subscriber
  reads Redis again, which also makes a new epoch for lost keys).
A read whose result cannot be anchored (the channel not received yet, the connection changed,
an event out of order meanwhile) still answers its subscribers; it is simply not remembered.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.realtime.bus import Bus
from backend.realtime.streams import Position


@dataclass(slots=True)
class _Tip:
    session: object
    epoch: bytes | None = None       # None until the first event or the read that anchors the tip
    top: int = 0
    anchored: bool = False           # a Redis read set it; before that `top` is the last live offset


class Tips:
    """Per stream channel with local subscribers: its epoch and top, followed from the live events."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._tips: dict[str, _Tip] = {}

    def known(self, channel: str) -> Position | None:
        """The channel's position as the live stream has it, when exact; None: read Redis."""
        tip = self._tips.get(channel)
        if tip is None or not tip.anchored or tip.epoch is None:
            return None
        if tip.session != self._bus.session(channel):
            del self._tips[channel]
            return None
        return Position(tip.epoch.decode(), tip.top)

    async def read(self, channel: str) -> Position:
        """Read the position from Redis and anchor the tip on it if nothing broke the stream meanwhile."""
        session = self._bus.session(channel)
        tip = None
        if session is not None:
            tip = self._tips.get(channel)
            if tip is None or tip.session != session:
                tip = self._tips[channel] = _Tip(session)
        position = await self._bus.streams.read(channel, limit=0)
        if tip is None or self._tips.get(channel) is not tip or self._bus.session(channel) != session:
            return position
        epoch = position.epoch.encode()
        if tip.epoch is None or not tip.anchored:
            if tip.epoch not in (None, epoch):
                del self._tips[channel]           # the stream was made anew during the read
                return position
            # Events delivered during the read are part of the live stream: the top is the later of
            # the read's top and the last offset delivered (offsets are published in order).
            tip.epoch, tip.top, tip.anchored = epoch, max(position.top, tip.top), True
        return position

    def event(self, channel: str, offset: int | None, epoch: bytes | None) -> None:
        """A live event of `channel` was delivered: move its tip, or drop the tip on a gap."""
        tip = self._tips.get(channel)
        if tip is None or offset is None:
            return                       # not followed, or an ephemeral event (no offset)
        if not tip.anchored:
            if tip.epoch is None or (epoch == tip.epoch and offset == tip.top + 1):
                tip.epoch, tip.top = epoch, offset
            else:
                del self._tips[channel]
        elif epoch == tip.epoch and offset == tip.top + 1:
            tip.top = offset
        elif epoch != tip.epoch or offset > tip.top:
            del self._tips[channel]           # a gap or a new epoch: the next subscriber reads Redis
        # else: an event the anchoring read already counted, delivered after it (same epoch, ≤ top)

    def drop(self, channel: str) -> None:
        """The channel's last local subscriber left: the bus stops listening, the tip means nothing."""
        self._tips.pop(channel, None)
