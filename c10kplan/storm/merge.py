"""`c10kplan merge`: the storm results of several load hosts as one fleet result.

- Counts are summed: connections, established, held, messages, bytes, failures by errno.
- Histograms are added bucket by bucket (HdrHistogram's add is exact), so the fleet's p99 is
  the p99 of every sample, never an average of the hosts' p99s (the mistake of tools that merge
  pre-computed percentiles).
- Throughput is counted over the common window: the span when every host was holding, from the
  latest hold start to the earliest hold end (`placement.hold_started_at` + `hold_seconds`).
  Each host sends on an open-loop schedule, at a steady rate through its hold, so the fleet's
  rate in that window is the sum of the hosts' rates (messages / hold seconds).
- The verdict: PASS when every host's storm passed, the shares of the fleet are all there
  exactly once, and the hosts held together for at least OVERLAP_MIN of the shortest hold.

Result files come from other hosts: each is size-capped, validated as a StormResult, and its
histograms are checked (storm/histo.py) before they are added.
"""

from __future__ import annotations

import os
from collections import Counter

from pydantic import BaseModel, ConfigDict, Field

from c10kplan.errors import BadInput
from c10kplan.storm.histo import check_all
from c10kplan.storm.result import StormResult, combine

MAX_FILE_BYTES = 64 << 20  # a storm result is a few KB, plus ~0.5 KB per storm process
MAX_FILES = 10_000
OVERLAP_MIN = 0.8  # of the shortest hold


class HostPart(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(description="the result file")
    share: str
    target: str
    connections: int
    established: int
    held: int
    messages_received: int
    messages_per_second: float
    hold_started_at: float | None
    hold_seconds: float
    ok: bool


class Window(BaseModel):
    model_config = ConfigDict(frozen=True)

    start: float = Field(description="Unix s: the latest hold start")
    end: float = Field(description="Unix s: the earliest hold end")
    seconds: float
    shortest_hold: float


class FleetResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    hosts: int
    parts: list[HostPart]
    storm: StormResult = Field(description="the merged storm: sums, added histograms, fleet throughput")
    window: Window | None = Field(None, description="when every host held at once (None: a part has no times)")
    problems: list[str]
    ok: bool
    verdict: str


def load_result(path: str) -> StormResult:
    """One `storm --json` document; BadInput (one line) for a missing, huge or foreign file."""
    from c10kplan.host.jsonfile import load_model_file

    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise BadInput(f"merge {path}: {exc.strerror}") from None
    if size > MAX_FILE_BYTES:
        raise BadInput(f"merge {path}: {size} bytes is more than a storm result ({MAX_FILE_BYTES} bytes at most)")
    return load_model_file(StormResult, path, "merge", MAX_FILE_BYTES)


def merge_files(paths: list[str]) -> FleetResult:
    if not paths:
        raise BadInput("merge needs at least one RESULT.json")
    if len(paths) > MAX_FILES:
        raise BadInput(f"merge takes at most {MAX_FILES} result files, not {len(paths)}")
    return merge_results([load_result(p) for p in paths], paths)


def common_window(results: list[StormResult]) -> Window | None:
    starts = [r.placement.hold_started_at if r.placement else None for r in results]
    if any(s is None for s in starts):
        return None
    start = max(starts)
    end = min(s + r.hold_seconds for s, r in zip(starts, results))
    return Window(start=start, end=end, seconds=round(max(0.0, end - start), 4),
                  shortest_hold=min(r.hold_seconds for r in results))


def share_problems(results: list[StormResult]) -> list[str]:
    """Missing, repeated or mixed shares of the fleet (results without a placement count as 1/1)."""
    shares = [(r.placement.index, r.placement.count) if r.placement else (1, 1) for r in results]
    sizes = sorted({k for _, k in shares})
    if len(sizes) > 1:
        return ["results from fleets of different sizes: " + ", ".join(f"{i}/{k}" for i, k in sorted(shares))]
    k = sizes[0]
    seen = Counter(i for i, _ in shares)
    out = [f"share {i}/{k} appears {n} times" for i, n in sorted(seen.items()) if n > 1]
    missing = [f"{i}/{k}" for i in range(1, k + 1) if i not in seen]
    if missing:
        out.append("missing share" + ("s " if len(missing) > 1 else " ") + ", ".join(missing[:20])
                   + (" ..." if len(missing) > 20 else ""))
    fleet = {r.placement.fleet_connections for r in results if r.placement}
    total = sum(r.connections for r in results)
    if not missing and len(fleet) == 1 and fleet != {total}:
        out.append(f"the shares add up to {total} connections, not the fleet's {fleet.pop()}")
    return out


def merge_results(results: list[StormResult], names: list[str]) -> FleetResult:
    """One FleetResult from the hosts' results (`names` label them in parts and errors)."""
    decoded = check_all([r.histograms for r in results], names)  # BadInput before any merging
    protocols = sorted({r.protocol for r in results})
    processes, index = [], 0
    for r in results:
        for p in r.per_process:
            processes.append(p.model_copy(update={"index": index}))
            index += 1
    merged = combine(
        target=",".join(sorted({r.target for r in results})), protocol=",".join(protocols),
        connections=sum(r.connections for r in results),
        source_addresses=sum(r.source_addresses for r in results), processes=processes,
        histograms=decoded)
    rate = sum(r.messages_received / r.hold_seconds for r in results if r.hold_seconds > 0)
    throughput = sum((r.bytes_sent + r.bytes_received) / r.hold_seconds for r in results if r.hold_seconds > 0)
    merged = merged.model_copy(update={"messages_per_second": round(rate, 1),
                                       "throughput_bytes_per_second": round(throughput, 1)})
    window = common_window(results)
    problems = list(merged.problems)
    if len(protocols) > 1:
        problems.append("the hosts ran different protocols: " + ", ".join(protocols))
    problems += share_problems(results)
    if window is not None and window.shortest_hold > 0 and window.seconds < OVERLAP_MIN * window.shortest_hold:
        problems.append(f"the hosts held together for {window.seconds:.2f} s of the shortest hold "
                        f"{window.shortest_hold:.2f} s (start them with one --start-at)")
    parts = [HostPart(name=name, share=r.placement.share if r.placement else "1/1", target=r.target,
                      connections=r.connections, established=r.established, held=r.held,
                      messages_received=r.messages_received, messages_per_second=r.messages_per_second,
                      hold_started_at=r.placement.hold_started_at if r.placement else None,
                      hold_seconds=r.hold_seconds, ok=r.ok) for name, r in zip(names, results)]
    return FleetResult(hosts=len(results), parts=parts, storm=merged, window=window, problems=problems,
                       ok=not problems, verdict="PASS" if not problems else "FAIL")
