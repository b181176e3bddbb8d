"""A server host and K client hosts on one machine: K + 2 named network namespaces.

    c10k-<pid>-<rand>-srv  eth0 198.18.0.1/15 ──veth── srv ┐
    c10k-<pid>-<rand>-c1   eth0 198.18.1.1/15 ──veth── c1  ├─ br0 in c10k-<pid>-<rand>-hub
    ...                                                     │  (a bridge, no address)
    c10k-<pid>-<rand>-cK   eth0 198.18.K.1/15 ──veth── cK  ┘

Addresses (all inside these namespaces, never on the host): 198.18.0.0/15 is reserved for
benchmarking (RFC 2544, section C.2.2), so it cannot clash with a real network. Every address
is on one /15 link, so no route is needed beyond the connected one. The server has 198.18.0.1.
Client i (1..K) has the block 198.18.i.1 .. 198.18.i.S, S = `sources_per_client` (1..254): its
source addresses for `storm --source-ips` (each adds one ephemeral port range per destination,
storm/config.py); `client_source_spec(i)` names the block as a range.

Link facts (Linux):
- veth MTU defaults to 1500; both ends and the bridge are set to `mtu` (68..65535; 68 is IPv4's
  minimum). GSO/GRO/TSO are left as the kernel sets them for veth (GSO and TSO on, GRO off
  unless XDP is attached), as a NIC driver would leave its own defaults.
- A bridge with STP off (the default) forwards on a port as soon as the port is up.
- A new namespace has only `lo`, and it is down: brought up in each.

Teardown leaves no namespace, veth or bridge, even after SIGKILL of the owner: before the
first namespace exists, the owner starts a reaper (`c10kplan.netns.reaper`, its own session,
no PDEATHSIG) that blocks reading a pipe only the owner holds open. When the owner exits or
dies, the pipe closes and the reaper deletes every namespace of the prefix. Each start also
sweeps the namespaces of earlier owners whose pid (in the name) is gone.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass

from c10kplan.errors import BadInput, EnvironmentProblem
from c10kplan.netns import ip as iplib
from c10kplan.processes import ChildSet

NETWORK = ipaddress.IPv4Network("198.18.0.0/15")  # RFC 2544 benchmarking range
PREFIX_LEN = NETWORK.prefixlen
SERVER_ADDRESS = "198.18.0.1"
MAX_CLIENTS = 64  # client namespaces per topology (each later runs its own storm processes)
MAX_SOURCES = 254  # addresses per client: 198.18.i.1 .. 198.18.i.254
MTU_MIN, MTU_MAX = 68, 65535
BRIDGE = "br0"
DEVICE = "eth0"  # the namespace end of each veth pair
REAPER_START = 10.0  # s for the reaper to say `ready` (a Python start-up: ~50 ms)
REAPER_WAIT = 30.0  # s for the reaper to finish its sweep after a normal close


@dataclass(frozen=True)
class NsHost:
    """One namespace that plays a host: its name, role, addresses and bridge port."""

    role: str  # "server" or "client1" .. "clientK"
    netns: str
    addresses: tuple[str, ...]  # the first is the primary one
    hub_port: str  # the veth end on the bridge, in the hub namespace

    @property
    def address(self) -> str:
        return self.addresses[0]


@dataclass(frozen=True)
class TopologyPlan:
    prefix: str
    hub: str
    server: NsHost
    clients: tuple[NsHost, ...]
    mtu: int

    @property
    def hosts(self) -> tuple[NsHost, ...]:
        return (self.server, *self.clients)

    @property
    def namespaces(self) -> tuple[str, ...]:
        return (self.hub, *(h.netns for h in self.hosts))


def new_prefix(pid: int | None = None) -> str:
    """c10k-<pid>-<6 hex>: unique per run; the pid lets a later run sweep it once the pid is gone."""
    return f"c10k-{os.getpid() if pid is None else pid}-{secrets.token_hex(3)}"


def client_addresses(index: int, sources: int) -> tuple[str, ...]:
    """Client `index`'s block (1-based): 198.18.<index>.1 .. 198.18.<index>.<sources>."""
    base = int(NETWORK.network_address) + index * 256
    return tuple(str(ipaddress.IPv4Address(base + j)) for j in range(1, sources + 1))


def client_source_spec(index: int, sources: int) -> str:
    """The block as a `--source-ips` range (a single address when `sources` is 1)."""
    addrs = client_addresses(index, sources)
    return addrs[0] if len(addrs) == 1 else f"{addrs[0]}-{addrs[-1]}"


def plan_topology(prefix: str, clients: int, mtu: int = 1500, sources_per_client: int = 1) -> TopologyPlan:
    """The names and addresses, checked; nothing is created. BadInput for a value out of range."""
    if not 1 <= clients <= MAX_CLIENTS:
        raise BadInput(f"client hosts must be 1..{MAX_CLIENTS}, not {clients}")
    if not MTU_MIN <= mtu <= MTU_MAX:
        raise BadInput(f"--mtu must be {MTU_MIN}..{MTU_MAX}, not {mtu}")
    if not 1 <= sources_per_client <= MAX_SOURCES:
        raise BadInput(f"source addresses per client must be 1..{MAX_SOURCES}, not {sources_per_client}")
    server = NsHost("server", f"{prefix}-srv", (SERVER_ADDRESS,), "srv")
    hosts = tuple(NsHost(f"client{i}", f"{prefix}-c{i}", client_addresses(i, sources_per_client), f"c{i}")
                  for i in range(1, clients + 1))
    return TopologyPlan(prefix, f"{prefix}-hub", server, hosts, mtu)


def hub_commands(plan: TopologyPlan) -> list[str]:
    """`ip -n HUB -batch` lines: the bridge, one veth pair per host (the far end created
    straight inside the host's namespace), each near end on the bridge."""
    cmds = ["link set lo up", f"link add {BRIDGE} mtu {plan.mtu} type bridge"]
    for h in plan.hosts:
        cmds += [f"link add {h.hub_port} mtu {plan.mtu} type veth peer name {DEVICE} mtu {plan.mtu} netns {h.netns}",
                 f"link set {h.hub_port} master {BRIDGE}", f"link set {h.hub_port} up"]
    cmds.append(f"link set {BRIDGE} up")
    return cmds


def host_commands(host: NsHost) -> list[str]:
    """`ip -n HOST -batch` lines: loopback and eth0 up, the host's addresses on eth0."""
    return (["link set lo up"] + [f"addr add {a}/{PREFIX_LEN} dev {DEVICE}" for a in host.addresses]
            + [f"link set {DEVICE} up"])


def _same_package_env() -> dict[str, str]:
    """Our environment, with the directory this c10kplan was imported from first on PYTHONPATH:
    the reaper runs the same code as its owner, however the owner found it."""
    import c10kplan

    home = os.path.dirname(os.path.dirname(os.path.abspath(c10kplan.__file__)))
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=home + (os.pathsep + path if path else ""))


class Topology:
    """The live namespaces of one plan. A context manager: leaving it tears everything down.

        with Topology(clients=3) as topo:
            run_in(topo.server.netns, [...])
    """

    def __init__(self, clients: int = 3, mtu: int = 1500, sources_per_client: int = 1,
                 prefix: str | None = None) -> None:
        self.plan = plan_topology(prefix or new_prefix(), clients, mtu, sources_per_client)
        self._reaper: subprocess.Popen | None = None
        self._kids: ChildSet | None = None
        self._pipe: int | None = None

    @property
    def server(self) -> NsHost:
        return self.plan.server

    @property
    def clients(self) -> tuple[NsHost, ...]:
        return self.plan.clients

    @property
    def prefix(self) -> str:
        return self.plan.prefix

    def __enter__(self) -> "Topology":
        self.build()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def build(self) -> None:
        """Sweep dead runs, start the reaper, create the namespaces and links. On any failure
        everything made so far is removed before the error propagates."""
        if os.geteuid() != 0:
            raise EnvironmentProblem("network namespaces need root (CAP_SYS_ADMIN, CAP_NET_ADMIN)")
        iplib.sweep_dead_owners()
        self._start_reaper()
        try:
            iplib.ip(batch=[f"netns add {ns}" for ns in self.plan.namespaces])
            iplib.ip(netns=self.plan.hub, batch=hub_commands(self.plan))
            for host in self.plan.hosts:
                iplib.ip(netns=host.netns, batch=host_commands(host))
        except BaseException:
            self.close()
            raise

    def _start_reaper(self) -> None:
        read_end, write_end = os.pipe()
        try:
            # Its own session: a Ctrl-C on the terminal or a SIGKILL of our process group does
            # not reach it. No PDEATHSIG (pdeathsig=0): it must outlive us. It holds only the
            # read end (Popen closes every other fd in the child).
            self._kids = ChildSet(1)
            reaper = self._kids.run(
                [sys.executable, "-m", "c10kplan.netns.reaper", self.plan.prefix],
                stdin=read_end, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                new_session=True, pdeathsig=0, env=_same_package_env())
            self._reaper = reaper.popen
        finally:
            os.close(read_end)
        os.set_inheritable(write_end, False)
        self._pipe = write_end
        # No namespace before the reaper is known to be watching (it says `ready`).
        if self._kids.wait_line(reaper, REAPER_START) != b"ready\n":
            err = b""
            if self._reaper.poll() is not None:
                err = self._reaper.stderr.read()
            self.close()
            raise EnvironmentProblem("the namespace reaper did not start"
                                     + (f": {err.decode(errors='replace').strip().splitlines()[-1]}" if err.strip() else ""))
        self._reaper.stdout.close()
        self._reaper.stderr.close()

    def close(self) -> None:
        """Delete every namespace of the prefix (processes inside are killed first), then let
        the reaper go. Idempotent."""
        iplib.delete_prefixed(self.plan.prefix, passes=1)
        if self._pipe is not None:
            os.close(self._pipe)
            self._pipe = None
        if self._kids is not None:
            # Reaped when it is done; left running (not SIGKILLed mid-sweep) if it takes longer.
            if self._kids.wait_until(lambda: not self._kids.live, REAPER_WAIT):
                self._kids.close()
            self._kids = self._reaper = None

    @property
    def reaper_pid(self) -> int | None:
        return self._reaper.pid if self._reaper is not None else None
