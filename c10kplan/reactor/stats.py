"""Server counters: one frozen record per worker, their sum, and the stats file.

The stats file is ONE JSON document, replaced atomically (write a temp file in the same
directory, then rename(2), which is atomic within a filesystem), so a reader never sees a
half-written document:

    {"time": <unix float>,
     "workers": [{"worker": 0, "pid": .., "accepted": .., "active": .., "closed": ..,
                  "rejected": .., "bytes_in": .., "bytes_out": .., "errors": {"ECONNRESET": 1},
                  "rss_bytes": .., "queued_bytes": .., "paused": ..}, ...],
     "total": {the same counters summed (no worker / pid)}}

Counters: `accepted` counts connections that became active (so accepted - closed == active);
`rejected` counts connections accepted only to be closed at once (over --max-connections, out of
fds, or an fd select(2) cannot watch). RSS is VmRSS of /proc/self/status, read through ProcFS.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from c10kplan.counts import add_counts
from c10kplan.errors import BadInput
from c10kplan.files import atomic_write
from c10kplan.host.process import process_rss_bytes
from c10kplan.host.procfs import ProcFS

COUNTERS = ("accepted", "active", "closed", "rejected", "bytes_in", "bytes_out", "queued_bytes", "paused")


class Totals(BaseModel):
    """Counters summed over workers (also the shape of one worker's counters)."""

    model_config = ConfigDict(frozen=True)

    accepted: int = 0
    active: int = 0
    closed: int = 0
    rejected: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    errors: dict[str, int] = {}
    rss_bytes: int = 0
    queued_bytes: int = 0  # output queued in user space, waiting for the peer to read
    paused: int = 0  # connections not being read because their queue passed the high-water mark


class WorkerStats(Totals):
    worker: int
    pid: int


class StatsDocument(BaseModel):
    model_config = ConfigDict(frozen=True)

    time: float
    workers: list[WorkerStats]
    total: Totals


def self_rss_bytes(procfs: ProcFS | None = None) -> int:
    """This process's resident set size in bytes (0 when /proc is not readable)."""
    return process_rss_bytes(procfs or ProcFS()) or 0


def sum_stats(workers: Iterable[Totals]) -> Totals:
    """Add counters, errors by name, and RSS."""
    sums = dict.fromkeys((*COUNTERS, "rss_bytes"), 0)
    errors: dict[str, int] = {}
    for w in workers:
        for key in sums:
            sums[key] += getattr(w, key)
        add_counts(errors, w.errors)
    return Totals(errors=dict(sorted(errors.items())), **sums)


def build_document(workers: Mapping[int, WorkerStats], now: float) -> StatsDocument:
    ordered = [workers[i] for i in sorted(workers)]
    return StatsDocument(time=now, workers=ordered, total=sum_stats(ordered))


def write_stats(path: str | os.PathLike[str], doc: StatsDocument) -> None:
    """Replace `path` atomically with the document. No fsync: it is rewritten every interval
    and only live readers care. No mkdir: a directory that went away is reported, not recreated."""
    atomic_write(path, doc.model_dump_json() + "\n", fsync=False, parents=False)


def read_stats(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The last document a running (or finished) server wrote to its --stats-file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot read stats file {path}: {exc.strerror}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"stats file {path} is not JSON: {exc.msg}") from None
    if not isinstance(doc, dict) or "workers" not in doc or "total" not in doc:
        raise BadInput(f"stats file {path} is not a c10kplan serve stats document")
    return doc
