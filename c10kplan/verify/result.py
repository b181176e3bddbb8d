"""What verify found: the plan's figures it compares against, and the whole result document
(the JSON `verify --json` prints, and what crosses back from a namespace)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from c10kplan.planner.findings import Finding
from c10kplan.storm.result import StormResult
from c10kplan.verify.compare import Comparison
from c10kplan.verify.measure import CpuUse, HostSample
from c10kplan.verify.ramp import RampSample
from c10kplan.verify.target import ServerMeasurement


class PlanSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    ready: bool
    server_processes: int
    client_processes: int
    source_addresses: int  # the minimum per destination
    fast_source_addresses: int  # each at most a quarter full: what the storm binds
    kernel_bytes_per_socket: int
    user_bytes_per_connection: int
    sockets: int
    fds_per_process: int
    # What one process may open (nofile hard limit, or fs.nr_open with CAP_SYS_RESOURCE) and
    # the fds the plan keeps for other uses: a process holds ceiling - reserve connections.
    fd_ceiling: int = 0
    reserve_fds: int = 0
    messages_per_s: float
    server_us_per_message: float  # CPU time per echo round trip (planner/cpu.py)
    client_us_per_message: float
    required_cores: float
    cores: int | None
    failing: list[str]
    findings: list[Finding] = []  # the plan's whole findings table (check's), PASS rows included
    expected_memory_bytes: int | None = None  # the plan's host memory: kernel + in flight + user + processes


class TargetRun(BaseModel):
    """What `verify --target` saw of the user's server: its address, its processes (when --pid
    was given) at the two samples and between them, and where its host facts came from."""

    model_config = ConfigDict(frozen=True)

    address: str  # HOST:PORT stormed
    pids: list[int]  # as given
    same_host: bool  # --pid given: the server's processes and host are measured here
    host_facts: str  # "this host" or the --host-facts file
    before: ServerMeasurement | None = None  # right before the storm
    during: ServerMeasurement | None = None  # `settle` s into the hold: RSS and fds growth from before
    end: ServerMeasurement | None = None  # at the end of the hold: CPU from during


class LimitStep(BaseModel):
    """One run of a --find-limit message-rate search."""

    model_config = ConfigDict(frozen=True)

    message_rate: float  # messages per connection per second
    held: int
    p99_ms: float | None  # corrected; None without replies
    missed: int  # messages the schedule called for that were never sent (behind)
    failure: str | None  # why this step failed; None = it held


class Limit(BaseModel):
    """What `verify --find-limit` found (JSON `limit`). `observed` is None when the search did
    not reach a limit: the ceiling held, or the guard stopped it first (`note` says which)."""

    model_config = ConfigDict(frozen=True)

    mode: str  # connections | message-rate
    observed: float | None  # connections held / messages per connection per second
    predicted: float | None  # the plan's figure for the same shape
    resource: str | None  # the finding id that binds first in the prediction
    failure: str | None  # "EADDRNOTAVAIL (storm connect)", "EMFILE (server accept)", "p99", "behind"
    error_pct: float | None  # (predicted - observed) / observed x 100
    reached: bool
    ceiling: float  # what the search went up to
    note: str = ""
    steps: list[LimitStep] = []


class VerifyResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    connections: int
    duration: float
    message_rate: float
    netns: bool
    profile: str | None
    plan: PlanSummary
    forced: bool
    server_workers: int
    storm_processes: int
    server_endpoint: str
    # serve --sched of the bundled server (verify/server.py server_sched); "inherit" for --target
    server_sched: str = "inherit"
    # --netns: buckets of the namespace's TCP established hash (its own, sized for the run:
    # processes/netns.py own_tcp_hash; negative = the host's shared table); None without --netns
    tcp_ehash_buckets: int | None = None
    before: HostSample
    during: HostSample | None
    server_active: int | None
    server_errors: dict[str, int]
    server_rss_bytes: int | None
    storm_rss_bytes: int | None
    storm: StormResult
    cpu: CpuUse | None = None  # CPU per message over the hold; None when idle or unmeasured
    comparisons: list[Comparison]
    calibration_file: str | None
    problems: list[str]
    verdict: str  # PASS | FAIL
    # CPUs the host was busy beyond this run over the hold (verify/measure.py busy_elsewhere);
    # above 0.5 a warning says the host-wide ratios are unreliable. The verdict stays.
    host_busy_elsewhere_cores: float | None = None
    warnings: list[str] = []
    ramp: list[RampSample] = []  # the storm's counters over the ramp, with Slab at each tenth
    protocol: str = "echo"
    # verify --target: the user's server (verify/own_server.py); None for the bundled one
    target: TargetRun | None = None
    limit: Limit | None = None  # --find-limit: what the search found
