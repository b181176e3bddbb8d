"""Host facts: everything the planner needs to know about a host, read through one ProcFS.

`collect_facts(procfs, pid)` reads each fact from its file, parses it with a pure parser from
`c10kplan.host.parse`, and records the units in the field names. A missing or malformed file
makes that one fact None and adds a line to `facts.notes`; it never raises, because containers
commonly hide parts of /proc/sys and /sys.

Kernel facts (units as the kernel prints them):
- proc/PID/limits "Max open files": RLIMIT_NOFILE soft/hard, in file descriptors, per process.
- proc/self/status CapEff: hex mask; bit 24 is CAP_SYS_RESOURCE, which a process needs to raise
  its hard nofile limit (up to fs.nr_open). Without it the hard limit is a ceiling per process.
- fs.file-max: system-wide open files; fs.file-nr: "allocated  0  max" (the middle field is
  always 0 since 2.6); fs.nr_open: ceiling for any process's nofile hard limit.
- fs.epoll.max_user_watches: epoll registrations per real user, across all epoll instances.
- net.ipv4.tcp_rmem / tcp_wmem: "min default max" in BYTES per socket.
- net.ipv4.tcp_mem: "low pressure high" in PAGES for all TCP sockets of the host together.
- net.ipv4.ip_local_port_range: "low high" inclusive, per network namespace; the kernel refuses
  (EINVAL) to set low > high, so an inverted range can only come from a hand-made tree.
  ip_local_reserved_ports: a ranges list.
- /sys/class/net/IF/speed: Mbit/s; -1 or an EINVAL read (virtual NICs) means unknown.
"""

from __future__ import annotations

from pathlib import Path

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from c10kplan.boundedread import HOST_FACTS_LIMIT, PrintableStr
from c10kplan.errors import BadInput, EnvironmentProblem, HostFactsError
from c10kplan.host import parse
from c10kplan.host.commands import HostCommands
from c10kplan.host.procfs import ProcFS, sysctl_relpath
from c10kplan.numeric import IntRange, parse_int

# Bit number of CAP_SYS_RESOURCE in the capability masks of /proc/PID/status
# (include/uapi/linux/capability.h).
CAP_SYS_RESOURCE = 24

# Field types of HostFacts: a count the kernel prints (never negative; at most LONG_MAX, the
# largest fs.file-max), an int sysctl (at most INT_MAX), a TCP port.
INT_MAX = 2**31 - 1
LONG_MAX = 2**63 - 1
Count = IntRange(0, LONG_MAX)
SysctlInt = IntRange(0, INT_MAX)
Port = IntRange(0, 65535)
PageSize = IntRange(1024, 1 << 30)  # 4 KiB .. 64 KiB in practice
CpuCount = IntRange(1, 1 << 20)
Pid = IntRange(1, 1 << 22)  # pid_max is at most 2^22 (PID_MAX_LIMIT)
Mode = IntRange(0, 2)  # tcp_tw_reuse, tcp_syncookies: 0, 1 or 2
Buckets = IntRange(1, INT_MAX)  # nf_conntrack_buckets

PORT_RANGE_KEY = "net.ipv4.ip_local_port_range"
# The kernel's default ephemeral range (inclusive, 28,232 ports), assumed when the file is hidden.
DEFAULT_PORT_RANGE = (32768, 60999)


class HostFacts(BaseModel):
    """What one host has. None means unknown (see `notes` for why)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    # Field constraints: what the kernel can report (a --host-facts file is validated against
    # them; `cpu_count: -2`, `page_size_bytes: 0`, `somaxconn: -1` are refused). Text fields
    # are printed in the report: kept printable (no ANSI escapes from a file).
    source: PrintableStr = Field("", max_length=4096, description="where the facts came from: a root dir or a file")
    kernel_release: Annotated[PrintableStr, Field(max_length=256)] | None = None
    page_size_bytes: PageSize | None = None
    cpu_count: CpuCount | None = None
    pid: Pid | None = Field(None, description="process whose limits were read; None = self")

    nofile_soft: Count | None = None
    nofile_hard: Count | None = None
    can_raise_hard_limit: bool | None = Field(None, description="CAP_SYS_RESOURCE in CapEff")

    file_max: Count | None = None
    nr_open: SysctlInt | None = None
    file_nr_allocated: Count | None = Field(None, description="fs.file-nr first field: fds in use")
    epoll_max_user_watches: Count | None = None

    somaxconn: SysctlInt | None = None
    tcp_max_syn_backlog: SysctlInt | None = None
    netdev_max_backlog: SysctlInt | None = None
    tcp_rmem_bytes: tuple[Count, Count, Count] | None = None
    tcp_wmem_bytes: tuple[Count, Count, Count] | None = None
    tcp_mem_pages: tuple[Count, Count, Count] | None = None
    rmem_max_bytes: SysctlInt | None = None
    wmem_max_bytes: SysctlInt | None = None
    ip_local_port_range: tuple[Port, Port] | None = None
    ip_local_reserved_ports: list[tuple[Port, Port]] | None = Field(None, max_length=65536)
    tcp_tw_reuse: Mode | None = None
    tcp_fin_timeout_s: SysctlInt | None = None
    tcp_syncookies: Mode | None = None

    conntrack_loaded: bool = False
    nf_conntrack_max: SysctlInt | None = None
    nf_conntrack_buckets: Buckets | None = None
    nf_conntrack_count: SysctlInt | None = Field(None, description="entries tracked now, in this netns")
    conntrack_rules: bool | None = Field(
        None, description="netfilter rules that need conntrack are present; None = not readable")
    conntrack_rules_read: list[Annotated[PrintableStr, Field(max_length=4096)]] = Field(
        default_factory=list, max_length=1000, description="what was read to decide conntrack_rules")

    mem_total_bytes: Count | None = None
    mem_available_bytes: Count | None = None
    link_speeds_mbit: dict[Annotated[PrintableStr, Field(max_length=64)], Count | None] = Field(
        default_factory=dict, max_length=4096, description="non-loopback interfaces; None = unknown speed"
    )

    notes: list[Annotated[PrintableStr, Field(max_length=4096)]] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _ordered(self) -> HostFacts:
        if self.ip_local_port_range is not None and self.ip_local_port_range[0] > self.ip_local_port_range[1]:
            raise ValueError("ip_local_port_range: low is above high")
        for low, high in self.ip_local_reserved_ports or ():
            if low > high:
                raise ValueError(f"ip_local_reserved_ports: range {low}-{high} runs backwards")
        return self

    @property
    def reserved_ports_in_range(self) -> int | None:
        """Reserved ports that fall inside the ephemeral range (they cannot be auto-bound)."""
        if self.ip_local_port_range is None:
            return None
        low, high = self.ip_local_port_range
        return parse.count_in_range(self.ip_local_reserved_ports or [], low, high)

    @property
    def link_speed_mbit(self) -> int | None:
        """The fastest known non-loopback link, Mbit/s; None when no speed is known."""
        known = [s for s in self.link_speeds_mbit.values() if s is not None]
        return max(known) if known else None


# sysctl key -> (HostFacts field, parser). Each value is one file under proc/sys.
def _int(text: str | None) -> int | None:
    return parse.parse_int(text)


def _triple(text: str | None) -> tuple[int, ...] | None:
    return parse.parse_ints(text, 3)


def parse_port_range(text: str | None) -> tuple[int, int] | None:
    """ "low high" of ip_local_port_range; None when missing, malformed, or low > high."""
    values = parse.parse_ints(text, 2)
    if values is None or values[0] > values[1]:
        return None
    return values[0], values[1]


def port_range(procfs: ProcFS) -> tuple[int, int]:
    """The ephemeral port range (low, high) a client on this host draws from.

    DEFAULT_PORT_RANGE when the file is missing (containers hide /proc/sys; the planner assumes
    the same). Raises EnvironmentProblem when it is there but malformed or inverted: sizing
    source addresses from it would be wrong (and an empty range divides by zero)."""
    text = procfs.read_sysctl(PORT_RANGE_KEY)
    if text is None:
        return DEFAULT_PORT_RANGE
    values = parse_port_range(text)
    if values is None:
        raise EnvironmentProblem(f"{procfs.path(sysctl_relpath(PORT_RANGE_KEY))}: {text[:40]!r} is not "
                                 "'low high' ephemeral ports with low <= high")
    return values


def reserved_ports_in(procfs: ProcFS, low: int, high: int) -> int:
    """Ports of net.ipv4.ip_local_reserved_ports inside low..high: connect() never picks
    them. 0 when the file is hidden or unreadable (the kernel default reserves none)."""
    ranges = parse.parse_ranges(procfs.read_sysctl("net.ipv4.ip_local_reserved_ports"))
    return parse.count_in_range(ranges or [], low, high)


_SYSCTLS: tuple[tuple[str, str, object], ...] = (
    ("fs.file-max", "file_max", _int),
    ("fs.nr_open", "nr_open", _int),
    ("fs.epoll.max_user_watches", "epoll_max_user_watches", _int),
    ("net.core.somaxconn", "somaxconn", _int),
    ("net.ipv4.tcp_max_syn_backlog", "tcp_max_syn_backlog", _int),
    ("net.core.netdev_max_backlog", "netdev_max_backlog", _int),
    ("net.ipv4.tcp_rmem", "tcp_rmem_bytes", _triple),
    ("net.ipv4.tcp_wmem", "tcp_wmem_bytes", _triple),
    ("net.ipv4.tcp_mem", "tcp_mem_pages", _triple),
    ("net.core.rmem_max", "rmem_max_bytes", _int),
    ("net.core.wmem_max", "wmem_max_bytes", _int),
    (PORT_RANGE_KEY, "ip_local_port_range", parse_port_range),
    ("net.ipv4.ip_local_reserved_ports", "ip_local_reserved_ports", parse.parse_ranges),
    ("net.ipv4.tcp_tw_reuse", "tcp_tw_reuse", _int),
    ("net.ipv4.tcp_fin_timeout", "tcp_fin_timeout_s", _int),
    ("net.ipv4.tcp_syncookies", "tcp_syncookies", _int),
    ("kernel.osrelease", "kernel_release", lambda t: (t or "").strip() or None),
)


def _unknown(notes: list[str], what: str, path: str, text: str | None) -> None:
    why = "missing or unreadable" if text is None else f"malformed ({text.strip()[:40]!r})"
    notes.append(f"{what}: unknown, {path} {why}")


def collect_facts(procfs: ProcFS, pid: int | None = None, *,
                  commands: HostCommands | None = None) -> HostFacts:
    """Read every fact the planner uses. Never raises for missing or malformed files.
    `commands`: where program outputs come from (the netfilter ruleset); default: run them
    for the real root, read ROOT/commands/ for a tree (host/commands.py)."""
    notes: list[str] = []
    values: dict[str, object] = {"source": str(procfs.root), "pid": pid}

    for key, field, parser in _SYSCTLS:
        text = procfs.read_sysctl(key)
        value = parser(text)  # type: ignore[operator]
        if value is None:
            _unknown(notes, key, "/" + sysctl_relpath(key), text)
        values[field] = value

    # fs.file-nr: "allocated unused max"; only the first field is interesting.
    file_nr = parse.parse_ints(procfs.read_sysctl("fs.file-nr"), 3)
    values["file_nr_allocated"] = file_nr[0] if file_nr else None
    if file_nr is None:
        notes.append("fs.file-nr: unknown (fds in use not counted)")

    who = "self" if pid is None else str(pid)
    limits_path = f"proc/{who}/limits"
    limits_text = procfs.read(limits_path)
    nofile = parse.parse_limits(limits_text)
    if nofile is None:
        _unknown(notes, "nofile limit", "/" + limits_path, limits_text)
    else:
        # "unlimited" cannot happen for RLIMIT_NOFILE (it is capped by nr_open); keep None.
        values["nofile_soft"], values["nofile_hard"] = nofile

    cap = parse.parse_cap_mask(procfs.read(f"proc/{who}/status"))
    if cap is None:
        notes.append(f"CAP_SYS_RESOURCE: unknown, /proc/{who}/status has no CapEff")
    values["can_raise_hard_limit"] = None if cap is None else bool(cap >> CAP_SYS_RESOURCE & 1)

    mem = parse.parse_meminfo(procfs.read("proc/meminfo"))
    values["mem_total_bytes"] = mem.get("MemTotal")
    values["mem_available_bytes"] = mem.get("MemAvailable")
    if "MemAvailable" not in mem:
        notes.append("MemAvailable: unknown, /proc/meminfo missing or without MemAvailable")

    values["page_size_bytes"] = parse.parse_kernel_page_size(procfs.read("proc/self/smaps"))
    if values["page_size_bytes"] is None:
        notes.append("page size: unknown, /proc/self/smaps has no KernelPageSize")

    values["cpu_count"] = _cpu_count(procfs)
    if values["cpu_count"] is None:
        notes.append("CPU count: unknown, no /sys/devices/system/cpu/online or /proc/cpuinfo")

    values.update(_conntrack(procfs, commands or HostCommands(procfs)))
    values["link_speeds_mbit"] = _link_speeds(procfs, notes)

    # The real root is built without re-validation (HostFacts defers its schema; `check` never
    # needs it): the kernel cannot report what the field constraints refuse, and every value
    # above comes from a typed parser. A tree (--root) is anyone's files, so it is validated
    # like a --host-facts file: somaxconn -1 in a planted tree is bad input, not a plan.
    if procfs.root == Path("/"):
        return HostFacts.model_construct(**values, notes=notes)
    return _validated_tree_facts(values, notes, procfs)


def _validated_tree_facts(values: dict[str, object], notes: list[str], procfs: ProcFS) -> HostFacts:
    from pydantic import ValidationError

    try:
        return HostFacts.model_validate({**values, "notes": notes})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ())) or "facts"
        raise HostFactsError(f"--root {procfs.root}: {loc}: {first.get('msg', 'invalid')}") from None


def _cpu_count(procfs: ProcFS) -> int | None:
    ranges = parse.parse_ranges(procfs.read("sys/devices/system/cpu/online"))
    if ranges:
        return sum(hi - lo + 1 for lo, hi in ranges)
    return parse.parse_cpuinfo_count(procfs.read("proc/cpuinfo"))


def _conntrack(procfs: ProcFS, commands: HostCommands) -> dict[str, object]:
    """nf_conntrack counts one entry per flow (both directions); only when the module is loaded
    does proc/sys/net/netfilter/nf_conntrack_max exist. nf_conntrack_count is per network
    namespace: the entries tracked now. The ruleset is read only when nothing is counted."""
    text = procfs.read_sysctl("net.netfilter.nf_conntrack_max")
    if text is None:
        return {"conntrack_loaded": False}
    count = parse.parse_int(procfs.read_sysctl("net.netfilter.nf_conntrack_count"))
    rules, read = (None, []) if count else conntrack_rules(procfs, commands)
    return {
        "conntrack_loaded": True,
        "nf_conntrack_max": parse.parse_int(text),
        "nf_conntrack_buckets": parse.parse_int(procfs.read_sysctl("net.netfilter.nf_conntrack_buckets")),
        "nf_conntrack_count": count,
        "conntrack_rules": rules,
        "conntrack_rules_read": read,
    }


_RULES_TEXT = {None: "not readable", True: "a rule uses conntrack", False: "no rule uses conntrack"}


def conntrack_rules(procfs: ProcFS, commands: HostCommands) -> tuple[bool | None, list[str]]:
    """Whether netfilter rules that need conntrack are present in this namespace (True / False;
    None when the rules could not be read), and what was read to say so.

    Legacy iptables lists its tables in proc/net/ip_tables_names (a `nat` table needs conntrack
    by itself); the rules themselves come from `nft list ruleset` (all of nf_tables, iptables-nft
    included) and `iptables-save` / `ip6tables-save` (the legacy tables)."""
    found, read, legacy = False, [], []
    for name in ("ip_tables_names", "ip6_tables_names"):
        tables = parse.parse_table_names(procfs.read(f"proc/net/{name}"))
        if tables is None:
            continue
        read.append(f"/proc/net/{name}: " + (", ".join(tables) or "no tables"))
        legacy += tables
        found = found or "nat" in tables
    nft = parse.ruleset_uses_conntrack(commands.output("nft-list-ruleset"))
    read.append(f"nft list ruleset: {_RULES_TEXT[nft]}")
    saved = [parse.ruleset_uses_conntrack(commands.output(n)) for n in ("iptables-save", "ip6tables-save")]
    ipt = True if True in saved else (False if None not in saved else None)
    if legacy:
        read.append(f"iptables-save: {_RULES_TEXT[ipt]}")
    if found or nft or ipt:
        return True, read
    complete = nft is not None and (not legacy or ipt is not None)
    return (False if complete else None), read


def _link_speeds(procfs: ProcFS, notes: list[str]) -> dict[str, int | None]:
    speeds: dict[str, int | None] = {}
    for name in procfs.listdir("sys/class/net"):
        if name == "lo":
            continue
        speed = parse.parse_int(procfs.read(f"sys/class/net/{name}/speed"))
        speeds[name] = speed if speed is not None and speed > 0 else None
    if not speeds:
        notes.append("link speed: unknown, no non-loopback interface under /sys/class/net")
    elif all(s is None for s in speeds.values()):
        notes.append("link speed: unknown for " + ", ".join(speeds) + " (virtual NIC or -1)")
    return speeds


def load_host_facts(path: str) -> HostFacts:
    """Load a `c10kplan snapshot` JSON file (`--host-facts FILE`). Raises HostFactsError."""
    from c10kplan.host.jsonfile import load_model_file

    facts = load_model_file(HostFacts, path, "--host-facts", HOST_FACTS_LIMIT)
    return facts if facts.source else facts.model_copy(update={"source": str(path)})


def facts_for(
    root: str | None = None, pid: int | str | None = None, host_facts: str | None = None
) -> HostFacts:
    """The facts a command plans with: a `--host-facts` snapshot file, or the tree at `--root`
    (default "/" or $C10KPLAN_ROOT) for this process or `--pid`. Raises BadInput for a root
    that is not a directory, a pid with no /proc entry, or both sources at once."""
    if host_facts is not None:
        if root is not None or pid is not None:
            raise BadInput("--host-facts cannot be combined with --root or --pid")
        return load_host_facts(host_facts)
    if isinstance(pid, str):
        try:
            pid = parse_int(pid)
        except ValueError as exc:
            raise BadInput(f"--pid {pid}: not a process id ({exc})") from None
    procfs = ProcFS(root)
    if not procfs.root.is_dir():
        flag = "--root" if root is not None else "C10KPLAN_ROOT"
        raise BadInput(f"{flag} {procfs.root}: no such directory")
    if pid is not None and (pid <= 0 or not procfs.exists(f"proc/{pid}")):
        raise BadInput(f"--pid {pid}: no such process in {procfs.path('proc')}")
    return collect_facts(procfs, pid)
