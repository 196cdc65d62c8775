"""Structured (JSON lines) logging: every record carries the extra fields it was logged with.

Records go through a queue to one writer thread (QueueHandler → _Writer), so a request pays
for building its record and nothing else: the JSON encoding and the write happen off the event
loop, and the writer flushes once per batch (whenever it has drained the queue), not once per line.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import sys
import threading
import time
from logging.handlers import QueueHandler
from typing import TextIO

import orjson

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's extra fields."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""

    def stamp(self, second: int) -> str:
        if second != self._second:          # strftime once per second, not once per line
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return self._stamp

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": f"{self.stamp(int(record.created))}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        return orjson.dumps(entry, default=str).decode()


class _Enqueue(QueueHandler):
    """Hands the record itself to the writer (the stdlib copies and pre-formats it in the caller)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if record.args:
            record.msg, record.args = record.getMessage(), None   # arguments may change after this call
        if record.exc_info:
            # The traceback is rendered here, while its frames are still what they were.
            record.exc_text, record.exc_info = logging.Formatter().formatException(record.exc_info), None
        return record


class AccessLine:
    """One access line, queued as it is: formatted by the writer like a record of `backend.access`."""

    __slots__ = ("created", "fields")

    def __init__(self, created: float, fields: dict[str, object]) -> None:
        self.created, self.fields = created, fields

    def json(self, formatter: JsonFormatter) -> str:
        second = int(self.created)
        entry: dict[str, object] = {"ts": f"{formatter.stamp(second)}.{int(self.created * 1000) % 1000:03d}Z",
                                    "level": "info", "logger": ACCESS.name, "msg": "request", **self.fields}
        return orjson.dumps(entry, default=str).decode()


class _Pending:
    """The queue between the loop and the writer: a put is one deque append that wakes nobody.

    A SimpleQueue wakes the writer thread on every put, and each wake-up fought the event loop for
    the GIL (in the profile of POST /api/bookings the put cost more than the rest of the access
    log). The writer polls instead: lines reach stderr at most POLL seconds late.
    """

    def __init__(self) -> None:
        self._items: collections.deque[logging.LogRecord | AccessLine] = collections.deque()

    def put_nowait(self, item: logging.LogRecord | AccessLine) -> None:
        self._items.append(item)

    def drain(self) -> list[logging.LogRecord | AccessLine]:
        """Everything queued so far, oldest first (popleft is atomic against concurrent appends)."""
        items = []
        pop = self._items.popleft
        while True:
            try:
                items.append(pop())
            except IndexError:
                return items


class _Writer(threading.Thread):
    """Formats what the loop queued and writes it in one write per batch, off the event loop.

    Its own loop rather than logging's QueueListener: that one hands records one by one through a
    handler's lock and filters; a batch here is formatted in a list and written once.
    """

    POLL = 0.05

    def __init__(self, stream: TextIO, pending: _Pending) -> None:
        super().__init__(name="log-writer", daemon=True)
        self._stream, self._pending = stream, pending
        self._formatter = JsonFormatter()
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            if not self.write_batch():
                self._stopping.wait(self.POLL)
        self.write_batch()                  # what was queued before stop() asked

    def write_batch(self) -> bool:
        items = self._pending.drain()
        if not items:
            return False
        lines = []
        for item in items:
            try:
                lines.append(item.json(self._formatter) if isinstance(item, AccessLine)
                             else self._formatter.format(item))
            except Exception as exc:         # one bad record must not lose the batch
                lines.append(orjson.dumps({"level": "error", "logger": "backend.logs",
                                           "msg": f"unformattable log record: {exc!r}"}).decode())
        try:
            self._stream.write("\n".join(lines) + "\n")
            self._stream.flush()
        except (OSError, ValueError):
            pass                            # stderr closed: nothing left to tell it
        return True

    def stop(self) -> None:
        self._stopping.set()
        self.join()


_writer: _Writer | None = None
_pending: _Pending | None = None
ACCESS = logging.getLogger("backend.access")


def access(fields: dict[str, object]) -> None:
    """Log one answered request at INFO on `backend.access`, with `fields` as the line's extras.

    Once configure() ran, the line skips logging's record machinery (a LogRecord, the handler chain:
    ~25 µs of the ~130 µs a /health/live cost) and goes straight to the writer, which formats it
    exactly like the record it would have been. LOG_LEVEL above INFO still silences it.
    """
    if not ACCESS.isEnabledFor(logging.INFO):
        return
    pending = _pending
    if pending is None:
        ACCESS.info("request", extra=fields)
    else:
        pending.put_nowait(AccessLine(time.time(), fields))


def _stop() -> None:
    global _writer, _pending
    _pending = None
    if _writer is not None:
        _writer.stop()              # writes what is queued, so no line logged before exit is lost
        _writer = None


def configure(level: str = "INFO") -> None:
    """Send every logger to stderr as JSON lines, through the queue and its writer thread."""
    global _writer, _pending
    _stop()
    records = _pending = _Pending()
    _writer = _Writer(sys.stderr, records)
    _writer.start()
    # Fields no line carries (JsonFormatter skips them): don't pay for them on every record.
    # `_srcfile = None` is the logging HOWTO's switch that skips the stack walk of findCaller().
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None
    root = logging.getLogger()
    root.handlers[:] = [_Enqueue(records)]   # type: ignore[arg-type]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _restart_in_child() -> None:
    """A forked child (gunicorn workers) has the queue but not the writer thread: start its own."""
    global _writer, _pending
    if _writer is not None:
        _writer = _pending = None     # the parent's thread does not exist here; nothing to stop
        configure(logging.getLevelName(logging.getLogger().level))


atexit.register(_stop)
os.register_at_fork(after_in_child=_restart_in_child)
