"""The one report schema between a child and its parent: JSON lines over a pipe, each an object
whose "event" names what happened; the other keys are that event's fields.

    {"event": "ready", "worker": 0, "pid": 4242}            serve worker -> serve
    {"event": "progress", "index": 1, "at": 12.5, ...}      storm process -> storm / verify
    {"event": "ramped", ...}                                 verify in a namespace -> verify

A child writes with a Reporter; the parent's ChildSet splits the pipe into records and hands on
only those with a string "event" (anything else a child might write there is skipped).
An exec'd child finds its pipe's fd number in the environment (REPORT_FD_ENV).
"""

from __future__ import annotations

import json
import os
import select
from collections.abc import Mapping
from typing import Any

EVENT = "event"  # the key every report carries
REPORT_FD_ENV = "C10KPLAN_REPORT_FD"  # an exec'd child's report pipe (a write end it inherited)


def json_line(record: Mapping[str, Any]) -> str:
    """One record as one compact JSON line, newline included (ASCII: non-ASCII is escaped)."""
    return json.dumps(record, separators=(",", ":")) + "\n"


def encode_line(record: Mapping[str, Any]) -> bytes:
    """json_line() as bytes, ready for os.write."""
    return json_line(record).encode()


def decode_line(raw: str | bytes) -> dict[str, Any] | None:
    """The record on one line; None for a blank line, bad JSON (or UTF-8), or a non-object."""
    if not raw.strip():
        return None
    try:
        record = json.loads(raw)
    except ValueError:  # UnicodeDecodeError is a ValueError too
        return None
    return record if isinstance(record, dict) else None


def split_lines(buf: bytes, data: bytes) -> tuple[list[dict[str, Any]], bytes]:
    """Add `data` to `buf` (the unfinished line from the last read). Returns the records of
    every complete line, skipping the ones decode_line rejects, and the new unfinished tail."""
    *lines, rest = (buf + data).split(b"\n")
    records = [rec for rec in map(decode_line, lines) if rec is not None]
    return records, rest


def is_report(record: Mapping[str, Any]) -> bool:
    """True for a record of the schema: it names its event."""
    return isinstance(record.get(EVENT), str)


class Reporter:
    """The child's side of the report pipe. `stamp` goes into every record (a worker's index).

    send(kind, **fields) writes {"event": kind, **stamp, **fields}; calling the reporter with a
    ready record (it must carry "event") writes that. Blocking by default. wait=False drops the
    record when the pipe is full (counted in `dropped`), so a stalled parent never stalls a
    child's loop; such a record must fit PIPE_BUF so that it is written whole or not at all.
    A parent that is gone is not an error here: PDEATHSIG is already stopping this process."""

    def __init__(self, fd: int, **stamp: Any) -> None:
        self.fd = fd
        self.stamp = stamp
        self.dropped = 0

    @classmethod
    def from_env(cls, **stamp: Any) -> Reporter | None:
        """The reporter of an exec'd child whose parent gave it a report pipe; else None."""
        text = os.environ.get(REPORT_FD_ENV, "")
        return cls(int(text), **stamp) if text.isdigit() else None

    def send(self, kind: str, *, wait: bool = True, **fields: Any) -> None:
        self.write({EVENT: kind, **self.stamp, **fields}, wait=wait)

    def __call__(self, record: Mapping[str, Any]) -> None:
        self.write(record)

    def write(self, record: Mapping[str, Any], *, wait: bool = True) -> None:
        data = encode_line(record)
        wait = wait or len(data) > select.PIPE_BUF
        try:
            os.set_blocking(self.fd, wait)
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]
        except BlockingIOError:
            self.dropped += 1
        except OSError:
            pass
