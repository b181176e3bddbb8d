"""The table of supported sysctl keys: type, bounds and scope, and the value parser.

Kernel facts used by the table (Linux 5.x/6.x, x86_64):
- Multi-value sysctls (tcp_rmem, ip_local_port_range, ...) are read back as tab-separated
  integers; the kernel accepts any whitespace on write.
- tcp_mem is in PAGES (4096 bytes on x86_64); tcp_rmem / tcp_wmem and net.core.*mem* are in BYTES.
- fs.nr_open caps RLIMIT_NOFILE: setrlimit(RLIMIT_NOFILE) above fs.nr_open fails with EPERM,
  so a profile's nofile hard limit must not exceed fs.nr_open (kernel default 1048576).
  Its kernel bounds are 64 (BITS_PER_LONG) .. 2147483584 (INT_MAX rounded down to 64).
- ip_local_port_range: both ends within 1..65535 and low <= high (we demand low < high).
- somaxconn has been an int since Linux 5.4 (it was a u16 backlog before 4.x kernels),
  so 0..2147483647.
- Scope: keys marked "netns" are per network namespace (a fresh `unshare -n` shows its own
  copy); "host" keys (fs.*, tcp_mem, netdev_max_backlog, busy_read/poll, tcp_max_orphans) are
  host-wide: absent from a child namespace, or (net.core.[rw]mem_*) present there read-only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from c10kplan.errors import ProfileError
from c10kplan.numeric import parse_int
from c10kplan.profiles.model import Setting

INT_MAX = 2**31 - 1
UINT_MAX = 2**32 - 1
LONG_MAX = 2**63 - 1

Scope = Literal["netns", "host"]
Order = Literal["none", "nondecreasing", "increasing"]


@dataclass(frozen=True)
class KeySpec:
    """One supported sysctl: how many integers, their bounds, their order, where it lives."""

    key: str
    count: int
    lo: int
    hi: int
    scope: Scope
    unit: str
    order: Order = "none"
    raise_ok: bool = True  # may the ">" (raise-only) form be used?


def _spec(key: str, count: int, lo: int, hi: int, scope: Scope, unit: str, **kw: object) -> KeySpec:
    return KeySpec(key, count, lo, hi, scope, unit, **kw)  # type: ignore[arg-type]


SUPPORTED: dict[str, KeySpec] = {
    s.key: s
    for s in (
        # fs.*: host-wide. file-max is a LONG; nr_open bounds are the kernel's (see above).
        _spec("fs.file-max", 1, 1, LONG_MAX, "host", "file handles"),
        _spec("fs.nr_open", 1, 64, 2147483584, "host", "fds per process"),
        _spec("fs.epoll.max_user_watches", 1, 1, LONG_MAX, "host", "epoll watches per user"),
        # net.core: the socket buffer caps and defaults are bytes; the kernel floor is
        # SOCK_MIN_RCVBUF (2304) / SOCK_MIN_SNDBUF (4608) on x86_64. r/wmem_{max,default}
        # show up in a child network namespace (Linux 6.x) but read-only (mode 0444): only
        # the initial namespace can change them, so they count as host-wide here.
        _spec("net.core.somaxconn", 1, 0, INT_MAX, "netns", "connections (accept queue)"),
        _spec("net.core.netdev_max_backlog", 1, 1, INT_MAX, "host", "packets per CPU"),
        _spec("net.core.rmem_max", 1, 2304, INT_MAX, "host", "bytes"),
        _spec("net.core.wmem_max", 1, 4608, INT_MAX, "host", "bytes"),
        _spec("net.core.rmem_default", 1, 2304, INT_MAX, "host", "bytes"),
        _spec("net.core.wmem_default", 1, 4608, INT_MAX, "host", "bytes"),
        _spec("net.core.optmem_max", 1, 0, INT_MAX, "netns", "bytes"),
        _spec("net.core.busy_read", 1, 0, INT_MAX, "host", "microseconds"),
        _spec("net.core.busy_poll", 1, 0, INT_MAX, "host", "microseconds"),
        # net.ipv4: per namespace except tcp_mem and tcp_max_orphans.
        _spec("net.ipv4.tcp_max_syn_backlog", 1, 0, INT_MAX, "netns", "half-open connections"),
        _spec("net.ipv4.ip_local_port_range", 2, 1, 65535, "netns", "ports",
              order="increasing", raise_ok=False),
        _spec("net.ipv4.tcp_rmem", 3, 1, INT_MAX, "netns", "bytes (min default max)",
              order="nondecreasing"),
        _spec("net.ipv4.tcp_wmem", 3, 1, INT_MAX, "netns", "bytes (min default max)",
              order="nondecreasing"),
        _spec("net.ipv4.tcp_mem", 3, 1, LONG_MAX, "host", "pages (low pressure high)",
              order="nondecreasing"),
        _spec("net.ipv4.tcp_max_orphans", 1, 0, INT_MAX, "host", "sockets"),
        _spec("net.ipv4.tcp_max_tw_buckets", 1, 0, INT_MAX, "netns", "sockets in TIME_WAIT"),
        _spec("net.ipv4.tcp_tw_reuse", 1, 0, 2, "netns", "0 off, 1 on, 2 loopback only",
              raise_ok=False),
        _spec("net.ipv4.tcp_fin_timeout", 1, 1, 86400, "netns", "seconds", raise_ok=False),
        _spec("net.ipv4.tcp_syncookies", 1, 0, 2, "netns", "mode", raise_ok=False),
        _spec("net.ipv4.tcp_slow_start_after_idle", 1, 0, 1, "netns", "bool", raise_ok=False),
        _spec("net.ipv4.tcp_fastopen", 1, 0, 0x7FF, "netns", "flag bits", raise_ok=False),
        _spec("net.ipv4.tcp_notsent_lowat", 1, 1, UINT_MAX, "netns", "bytes", raise_ok=False),
        _spec("net.ipv4.tcp_keepalive_time", 1, 1, 32767, "netns", "seconds", raise_ok=False),
        _spec("net.ipv4.tcp_keepalive_intvl", 1, 1, 32767, "netns", "seconds", raise_ok=False),
        _spec("net.ipv4.tcp_keepalive_probes", 1, 1, 127, "netns", "probes", raise_ok=False),
    )
}

# `--keys` selectors naming a scope rather than a glob: `--keys netns` selects exactly the
# per-namespace keys of the table (what a child network namespace can set), `--keys host` the
# host-wide ones. 'net.*' is NOT the per-namespace set: it also matches host-wide tcp_mem,
# netdev_max_backlog, busy_read/poll, tcp_max_orphans and net.core.[rw]mem_*.
SCOPE_SELECTORS: tuple[Scope, ...] = ("netns", "host")


def keys_in_scope(scope: Scope) -> tuple[str, ...]:
    """The supported keys of one scope, in table order."""
    return tuple(k for k, spec in SUPPORTED.items() if spec.scope == scope)


def expand_selectors(patterns: tuple[str, ...]) -> tuple[str, ...]:
    """`("netns", "fs.nr_open")` -> the netns key names + "fs.nr_open". Globs pass through;
    an exact key name is a glob that matches only itself. Keys outside the table (allow_unknown)
    have no known scope, so a scope selector never selects them."""
    out: list[str] = []
    for pat in patterns:
        out.extend(keys_in_scope(pat) if pat in SCOPE_SELECTORS else (pat,))  # type: ignore[arg-type]
    return tuple(out)


# sysctl(8) names: dot-separated segments of [A-Za-z0-9_-] (plus ':' '@' '+' seen in
# interface-specific keys). No '/', no '..', no empty segment, no whitespace.
_SEGMENT = re.compile(r"^[A-Za-z0-9_\-:@+]+$")


def key_problem(key: str) -> str | None:
    """Why `key` is not a well-formed sysctl name, or None when it is."""
    if not key:
        return "empty key"
    if "/" in key:
        return "a sysctl key must not contain '/'"
    if ".." in key:
        return "a sysctl key must not contain '..'"
    segments = key.split(".")
    if any(not seg for seg in segments):
        return "a sysctl key must not have empty segments"
    for seg in segments:
        if not _SEGMENT.match(seg):
            return f"bad characters in segment {seg!r}"
    return None


def parse_value(key: str, raw: object, source: str, *, allow_unknown: bool) -> Setting:
    """Check one `[sysctl]` entry against the table. Raises ProfileError naming file and key."""

    def bad(reason: str) -> ProfileError:
        return ProfileError(f"{source}: {key}: {reason}")

    problem = key_problem(key)
    if problem:
        raise bad(problem)
    spec = SUPPORTED.get(key)
    if spec is None and not allow_unknown:
        raise bad("unknown key (not in the supported-key table; set allow_unknown = true "
                  "in the profile to use it anyway)")

    raise_only = False
    if isinstance(raw, bool) or isinstance(raw, float):
        raise bad(f"wrong type {type(raw).__name__}; expected an integer, a string or an array")
    if isinstance(raw, int):
        tokens = [str(raw)]
    elif isinstance(raw, list):
        if not raw or any(isinstance(v, bool) or not isinstance(v, int) for v in raw):
            raise bad("an array value must hold integers only")
        tokens = [str(v) for v in raw]
    elif isinstance(raw, str):
        text = raw.strip()
        if text.startswith(">"):
            raise_only = True
            text = text[1:].strip()
        tokens = text.split()
        if not tokens:
            raise bad("empty value")
    else:
        raise bad(f"wrong type {type(raw).__name__}; expected an integer, a string or an array")

    if spec is None:
        # allow_unknown: keep the text; integers when it parses as integers.
        ints = _ints(tokens)
        if raise_only and ints is None:
            raise bad("the raise-only form '>' needs integer values")
        return Setting(key=key, ints=ints, text=" ".join(tokens), raise_only=raise_only,
                       source=source, known=False)

    ints = _ints(tokens)
    if ints is None:
        raise bad(f"wrong type: expected {spec.count} integer(s) ({spec.unit}), got {raw!r}")
    if len(ints) != spec.count:
        raise bad(f"expected {spec.count} integer(s) ({spec.unit}), got {len(ints)}")
    for v in ints:
        if not spec.lo <= v <= spec.hi:
            raise bad(f"value {v} out of range {spec.lo}..{spec.hi} ({spec.unit})")
    if spec.order == "increasing" and any(a >= b for a, b in zip(ints, ints[1:])):
        raise bad(f"values must increase (low < high), got {' '.join(map(str, ints))}")
    if spec.order == "nondecreasing" and any(a > b for a, b in zip(ints, ints[1:])):
        raise bad(f"values must not decrease (min <= default <= max), got "
                  f"{' '.join(map(str, ints))}")
    if raise_only and not spec.raise_ok:
        raise bad("the raise-only form '>' is not meaningful for this key")
    return Setting(key=key, ints=ints, text=" ".join(map(str, ints)), raise_only=raise_only,
                   source=source, known=True)


def _ints(tokens: list[str]) -> tuple[int, ...] | None:
    try:
        return tuple(parse_int(t, signed=True) for t in tokens)
    except ValueError:
        return None
