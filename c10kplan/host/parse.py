"""Pure parsers: text of a /proc or /sys file in, plain values out. No I/O here.

Every parser returns None (or an empty mapping) for text it cannot make sense of; it never
raises on garbage, because containers and old kernels hide or reshape these files.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from c10kplan.numeric import parse_int as _strict_int


def _dec(token: str) -> int:
    """One decimal integer in ASCII digits (a sign allowed: an unknown link speed reads -1).
    ValueError for anything else: int() would take "1_000" and non-ASCII digits."""
    return _strict_int(token, signed=True)


def parse_int(text: str | None) -> int | None:
    """A single integer, e.g. /proc/sys/net/core/somaxconn."""
    if text is None:
        return None
    try:
        return _dec(text.strip())
    except ValueError:
        return None


def parse_ints(text: str | None, count: int | None = None) -> tuple[int, ...] | None:
    """Whitespace-separated integers (tcp_rmem "4096 131072 6291456"); None if any is bad or
    the count does not match."""
    if text is None:
        return None
    try:
        values = tuple(_dec(tok) for tok in text.split())
    except ValueError:
        return None
    if not values or (count is not None and len(values) != count):
        return None
    return values


def parse_meminfo(text: str | None) -> dict[str, int]:
    """/proc/meminfo -> {field: bytes}. The kernel prints "kB" meaning KiB (1024 bytes);
    fields without a unit (HugePages_Total, ...) are counts and are kept as is."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        name, sep, rest = line.partition(":")
        if not sep:
            continue
        parts = rest.split()
        if not parts:
            continue
        try:
            value = _dec(parts[0])
        except ValueError:
            continue
        if len(parts) > 1 and parts[1] == "kB":
            value *= 1024
        out[name.strip()] = value
    return out


def parse_status(text: str | None) -> dict[str, str]:
    """/proc/PID/status -> {field: raw value text}."""
    out: dict[str, str] = {}
    for line in (text or "").splitlines():
        name, sep, rest = line.partition(":")
        if sep:
            out[name.strip()] = rest.strip()
    return out


def status_rss_bytes(text: str | None) -> int | None:
    """VmRSS of /proc/PID/status in bytes ("VmRSS:   12345 kB", kB = KiB)."""
    raw = parse_status(text).get("VmRSS")
    if not raw:
        return None
    parts = raw.split()
    try:
        return _dec(parts[0]) * 1024
    except (ValueError, IndexError):
        return None


def parse_sockstat(text: str | None) -> dict[str, dict[str, int]]:
    """/proc/net/sockstat -> {"TCP": {"inuse": .., "orphan": .., "tw": .., "alloc": .., "mem": ..}}.
    Note: TCP "mem" is in pages (the same unit as tcp_mem), not bytes."""
    out: dict[str, dict[str, int]] = {}
    for line in (text or "").splitlines():
        proto, sep, rest = line.partition(":")
        if not sep:
            continue
        toks = rest.split()
        fields: dict[str, int] = {}
        for key, val in zip(toks[0::2], toks[1::2]):
            try:
                fields[key] = _dec(val)
            except ValueError:
                continue
        out[proto.strip()] = fields
    return out


def parse_limits(text: str | None, name: str = "Max open files") -> tuple[int | None, int | None] | None:
    """/proc/PID/limits -> (soft, hard) of one limit; "unlimited" becomes None inside the pair.
    None when the line is missing or its values are not numbers.

        Limit                     Soft Limit           Hard Limit           Units
        Max open files            20000                20000                files
    """
    for line in (text or "").splitlines():
        if not line.startswith(name):
            continue
        toks = line[len(name):].split()
        if len(toks) < 2:
            return None
        out: list[int | None] = []
        for tok in toks[:2]:
            if tok == "unlimited":
                out.append(None)
                continue
            try:
                out.append(_dec(tok))
            except ValueError:
                return None
        return out[0], out[1]
    return None


def parse_cap_mask(text: str | None, field: str = "CapEff") -> int | None:
    """A capability mask of /proc/PID/status ("CapEff:\t000001fffeffffff", hex) as an int."""
    raw = parse_status(text).get(field)
    if not raw:
        return None
    try:
        return int(raw, 16)
    except ValueError:
        return None


def parse_ranges(text: str | None) -> list[tuple[int, int]] | None:
    """A kernel list of numbers and ranges ("1000-1005,2000", as in ip_local_reserved_ports or
    /sys/devices/system/cpu/online) -> [(low, high), ...]; "" is an empty list; None on garbage."""
    if text is None:
        return None
    out: list[tuple[int, int]] = []
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        low, sep, high = part.partition("-")
        try:
            lo = _dec(low)
            hi = _dec(high) if sep else lo
        except ValueError:
            return None
        if hi < lo:
            return None
        out.append((lo, hi))
    return out


def count_in_range(ranges: list[tuple[int, int]], low: int, high: int) -> int:
    """How many numbers of `ranges` fall inside [low, high] (ranges may overlap)."""
    seen: set[int] = set()
    for lo, hi in ranges:
        seen.update(range(max(lo, low), min(hi, high) + 1))
    return len(seen)


def parse_cpuinfo_count(text: str | None) -> int | None:
    """Number of "processor" entries in /proc/cpuinfo, None if there are none."""
    n = sum(1 for line in (text or "").splitlines() if line.split(":")[0].strip() == "processor")
    return n or None


def parse_kernel_page_size(text: str | None) -> int | None:
    """The first "KernelPageSize:   4 kB" of /proc/PID/smaps, in bytes (kB = KiB)."""
    for line in (text or "").splitlines():
        if line.startswith("KernelPageSize:"):
            parts = line.split()
            try:
                return _dec(parts[1]) * 1024
            except (IndexError, ValueError):
                return None
    return None


class PidStat(NamedTuple):
    """The fields of /proc/PID/stat we use. utime/stime are in clock ticks (SC_CLK_TCK/s)."""

    state: str  # R, S, D, Z (zombie), T, ...
    ppid: int
    pgrp: int
    utime_ticks: int
    stime_ticks: int


def parse_pid_stat(text: str | None) -> PidStat | None:
    """/proc/PID/stat -> PidStat. The fields are counted after the last ')' because `comm`
    (field 2) may hold spaces and parentheses; state is field 3, ppid 4, pgrp 5, utime 14,
    stime 15 (proc(5))."""
    if not text:
        return None
    fields = text.rpartition(")")[2].split()
    try:
        return PidStat(fields[0], _dec(fields[1]), _dec(fields[2]), _dec(fields[11]), _dec(fields[12]))
    except (IndexError, ValueError):
        return None


class CpuTimes(NamedTuple):
    """The host's CPU time from the first line of /proc/stat, in clock ticks (SC_CLK_TCK/s)
    summed over all CPUs."""

    busy_ticks: int  # user + nice + system + irq + softirq: work done on this host's CPUs
    idle_ticks: int  # idle + iowait
    steal_ticks: int  # time the hypervisor gave our virtual CPUs to someone else


def parse_proc_stat_cpu(text: str | None) -> CpuTimes | None:
    """`cpu  user nice system idle iowait irq softirq steal guest guest_nice` (proc(5)).

    softirq matters here: loopback TCP runs the receiver's input path in NET_RX softirq. With
    CONFIG_IRQ_TIME_ACCOUNTING=y that time is charged to no process (only to this line); with
    tick accounting (this build host) it is also charged to the task that was interrupted, and
    softirq work done in ksoftirqd or on an idle CPU belongs to no process of ours either way.
    This line counts it in every case. guest and guest_nice are already included in user and
    nice, so they are not added again."""
    if not text:
        return None
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            try:
                user, nice, system, idle, iowait, irq, softirq, *rest = (_dec(f) for f in fields[1:])
            except ValueError:
                return None
            steal = rest[0] if rest else 0
            return CpuTimes(user + nice + system + irq + softirq, idle + iowait, steal)
    return None


# Netfilter rules that need connection tracking. Kernel fact (Linux >= 4.10, "netfilter:
# conntrack: register hooks in netns when needed by ruleset"): nf_conntrack hooks into a
# network namespace only once a rule there needs it (a ct / state / conntrack match, NAT, a CT
# target, a flowtable); until then it tracks nothing, even while the module is loaded.
_NFT_CONNTRACK = re.compile(
    r"(^|[\s{;])ct\s+[a-z]|\btype\s+nat\b|\b(masquerade|snat|dnat|redirect|notrack|synproxy)\b|\bflow\s+(add|offload)\b|\bflowtable\b")
_IPT_CONNTRACK = re.compile(
    r"-m\s+(state|conntrack|connmark|connlimit|connbytes|connlabel|helper)\b|--ctstate\b"
    r"|-j\s+(MASQUERADE|SNAT|DNAT|REDIRECT|NETMAP|CT|CONNMARK|NOTRACK|SYNPROXY)\b")


_QUOTED = re.compile(r'"[^"]*"')


def ruleset_uses_conntrack(text: str | None) -> bool | None:
    """Whether an `nft list ruleset` or `iptables-save` output has a rule that needs conntrack
    (see above; an iptables `*nat` table needs it even without rules). None for no output."""
    if text is None:
        return None
    for line in text.splitlines():
        # Quoted strings (nft comments, iptables --comment) are names, not rules.
        line = _QUOTED.sub('""', line).split("#", 1)[0].strip()
        if not line:
            continue
        if line == "*nat" or _NFT_CONNTRACK.search(line) or _IPT_CONNTRACK.search(line):
            return True
    return False


def parse_table_names(text: str | None) -> list[str] | None:
    """/proc/net/ip_tables_names (legacy iptables tables in use in this netns), one per line."""
    if text is None:
        return None
    return [name.strip() for name in text.splitlines() if name.strip()]
