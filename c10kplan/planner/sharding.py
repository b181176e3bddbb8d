"""How many processes and source addresses a target needs. Pure arithmetic, shared by the
planner, `serve --workers auto`, `storm --processes auto / --source-ips auto` and `verify`.

Kernel facts:
- RLIMIT_NOFILE is per process; raising the hard limit needs CAP_SYS_RESOURCE and can never
  exceed fs.nr_open (default 1048576). Without the capability, connections above
  (hard - reserve) per process must be sharded across processes.
- A TCP client socket's 4-tuple must be unique. To one destination ip:port, one source address
  offers (high - low + 1) ephemeral ports from net.ipv4.ip_local_port_range, minus
  ip_local_reserved_ports. With IP_BIND_ADDRESS_NO_PORT (Linux >= 4.2) the port is chosen at
  connect() time per 4-tuple, so each extra source address adds a full range.
"""

from __future__ import annotations

# connect() searches for a free port of the range per (source, destination). Since Linux 4.6 it
# prefers ports of one parity and scans past used ones, so past about half the range each
# connect() slows from ~60 us to milliseconds (measured on 6.18 in a fresh namespace, one source
# address: 12k connections ~56 us each, 15k ~1.1 ms, 18k ~4.3 ms, of 28,232 ports).
SLOW_PORT_SHARE = 0.5
# What `storm --source-ips auto` and verify fill each source address to: well clear of that.
PORT_SHARE = 0.25
# Loopback source addresses there are: 127.0.0.0/8 minus network and broadcast.
MAX_SOURCE_ADDRESSES = 2**24 - 2


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def usable_fds(hard_limit: int, reserve: int) -> int:
    """Connections one process can hold: its nofile limit minus fds kept for other uses."""
    return max(0, hard_limit - reserve)


def processes_needed(connections: int, hard_limit: int, reserve: int) -> int:
    """Processes needed to hold `connections` sockets at one fd each under `hard_limit`."""
    per_process = usable_fds(hard_limit, reserve)
    if connections <= 0:
        return 1
    if per_process <= 0:
        raise ValueError(f"nofile limit {hard_limit} leaves no fds after reserving {reserve}")
    return max(1, ceil_div(connections, per_process))


# SO_REUSEPORT picks a listener by a hash of the 4-tuple, so each of W workers gets a binomial
# share of N connections: mean N/W, standard deviation sqrt(N x (1/W) x (1 - 1/W)). Workers are
# sized so that the mean plus this many deviations fits one process's fds: at 4 sigma a worker
# overflows with probability ~3e-5 per run. (Measured at 1M over 51 workers sized by the mean
# alone, 19,608 of 19,936 fds: the 328-fd margin is ~2.3 sigma and a worker hit EMFILE in about
# 40 % of runs.)
REUSEPORT_SIGMAS = 4.0


def reuseport_processes_needed(connections: int, hard_limit: int, reserve: int) -> int:
    """Server processes needed when SO_REUSEPORT spreads `connections` over them by hash: the
    fewest W whose busiest share (mean + REUSEPORT_SIGMAS deviations) fits one process."""
    low = processes_needed(connections, hard_limit, reserve)
    per_process = usable_fds(hard_limit, reserve)
    k = REUSEPORT_SIGMAS

    def fits(workers: int) -> bool:
        share = 1 / workers
        return connections * share + k * (connections * share * (1 - share)) ** 0.5 <= per_process

    if low <= 1 or fits(low):
        return low
    # A bound that fits: the mean x = N / W with x + k sqrt(x) <= P (sqrt(1 - 1/W) <= 1).
    x_max = ((-k + (k * k + 4 * per_process) ** 0.5) / 2) ** 2
    high = max(low + 1, ceil_div(connections, max(1, int(x_max))))
    while not fits(high):  # int() rounding can leave it a step short; fits() is monotone in W
        high *= 2
    while high - low > 1:  # low does not fit, high does
        mid = (low + high) // 2
        low, high = (low, mid) if fits(mid) else (mid, high)
    return high


def ports_per_address(port_low: int, port_high: int, reserved: int = 0) -> int:
    """Ephemeral ports one source address offers toward one destination ip:port."""
    return max(0, port_high - port_low + 1 - reserved)


def source_addresses_needed(connections: int, port_low: int, port_high: int, reserved: int = 0,
                            share: float = 1.0) -> int:
    """Source addresses a client needs to open `connections` to one destination ip:port, each
    address filled to at most `share` of its port range (1.0: the bare minimum)."""
    per_addr = ports_per_address(port_low, port_high, reserved)
    if per_addr <= 0:
        raise ValueError("the ephemeral port range is empty")
    return max(1, ceil_div(connections, max(1, int(per_addr * share))))


def fast_source_addresses(connections: int, port_low: int, port_high: int, reserved: int = 0) -> int:
    """Source addresses that keep each at most PORT_SHARE full (connect() stays fast)."""
    return source_addresses_needed(connections, port_low, port_high, reserved, PORT_SHARE)
