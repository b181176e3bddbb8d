"""Pure parsers: text of a /proc or /sys file in, plain values out. No I/O here.

Every parser returns None (or an empty mapping) for text it cannot make sense of; it never
raises on garbage, because containers and old kernels hide or reshape these files.
"""

from __future__ import annotations


def parse_int(text: str | None) -> int | None:
    """A single integer, e.g. /proc/sys/net/core/somaxconn."""
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def parse_ints(text: str | None, count: int | None = None) -> tuple[int, ...] | None:
    """Whitespace-separated integers (tcp_rmem "4096 131072 6291456"); None if any is bad or
    the count does not match."""
    if text is None:
        return None
    try:
        values = tuple(int(tok) for tok in text.split())
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
            value = int(parts[0])
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
        return int(parts[0]) * 1024
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
                fields[key] = int(val)
            except ValueError:
                continue
        out[proto.strip()] = fields
    return out
