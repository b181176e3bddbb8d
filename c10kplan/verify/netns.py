"""`verify --netns`: run the whole verify inside a throwaway network namespace.

verify re-executes itself as `unshare -n -- python -m c10kplan.verify OPTIONS_JSON`, a child
of the process layer with a report pipe. Inside: loopback up (`ip link set lo up`: a new
namespace has only `lo`, and it is down), the per-namespace keys of --profile applied with
`c10kplan apply --keys netns`, then the ordinary verify on that host (findlimit.run_chosen:
run.run_here, or the --find-limit search). Progress events come back over the report pipe,
the result as one JSON document on stdout; errors as {"error": {"kind", "message"}} with the
same exit code. The namespace disappears when its last
process exits: nothing on the host changes.

Kernel facts: net.core.somaxconn, net.ipv4.ip_local_port_range, tcp_rmem/wmem,
tcp_max_syn_backlog and tcp_tw_reuse are per network namespace (a new namespace starts from
the kernel defaults, not the host's values). fs.* and net.ipv4.tcp_mem are host-wide: the
`netns` selector (profiles/schema.py, keys_in_scope("netns")) takes neither, and tcp_mem is not
even visible in a non-initial namespace's /proc/sys (its table is registered for init_net only),
so nothing host-wide is written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable

from c10kplan import errors
from c10kplan.errors import C10kError, EnvironmentProblem
from c10kplan.processes import (
    Child,
    ChildSet,
    OwnedTempDir,
    bring_loopback_up,
    describe_status,
    own_tcp_hash,
    tcp_ehash_entries,
    unshare_net_argv,
    upstream_reporter,
)
from c10kplan.verify.options import VerifyOptions
from c10kplan.verify.result import VerifyResult
from c10kplan.verify.findlimit import run_chosen

INSIDE_ENV = "C10KPLAN_VERIFY_INSIDE_NETNS"
INTERRUPT_WAIT = 20.0  # s for the inner verify to clean up after SIGINT before SIGKILL


def run_in_netns(opts: VerifyOptions, *, on_event: Callable[[dict], None] | None = None,
                 on_output: Callable[[str], None] | None = None) -> VerifyResult:
    """Run verify inside `unshare -n`. Its progress events (its report pipe) go to `on_event`;
    the lines it writes to stderr (a warning, a crash) go to `on_output`, without their newline
    (the CLI prints them; the library prints nothing, and by default drops them: the last one
    still ends up in the error when no result comes back)."""
    argv = [*unshare_net_argv("--netns"), sys.executable, "-m", "c10kplan.verify", opts.model_dump_json()]
    said: list[str] = []

    def on_line(text: str) -> None:
        if text.strip():
            said.append(text.strip())
            if on_output is not None:
                on_output(text)

    def on_report(child: Child, event: dict) -> None:
        if on_event is not None:
            on_event(event)

    with tempfile.TemporaryFile() as out, ChildSet(1, on_report=on_report) as kids:
        # The namespace side is a child of the process layer (PDEATHSIG): if this process is
        # killed outright, it dies too, and its own children (server, storm) follow.
        child = kids.run(argv, stdout=out, stderr=subprocess.PIPE, env={**os.environ, INSIDE_ENV: "1"},
                         report=True)
        assert child.popen is not None and child.popen.stderr is not None
        err_fd = child.popen.stderr.fileno()
        kids.watch_lines(child.popen.stderr, on_line)
        try:
            # until it exited and its stderr is read to the end
            while not child.exited or kids.watching(err_fd):
                kids.pump(None)
        except BaseException:
            # Pass the interrupt on and give the inner verify time to stop its server and storm.
            kids.stop(signal.SIGINT, INTERRUPT_WAIT)
            raise
        out.seek(0)
        data = out.read().decode("utf-8", "replace")
    return _decode(data, child.returncode or 0, said[-1] if said else "")


def raise_error_document(doc: object) -> None:
    """Raise the error an {"error": {"kind", "message"}} document (_print_error) names."""
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        kind = getattr(errors, doc["error"].get("kind", ""), None)
        cls = kind if isinstance(kind, type) and issubclass(kind, C10kError) else EnvironmentProblem
        raise cls(doc["error"].get("message", "verify failed inside the namespace"))


def _decode(data: str, code: int, last_output: str = "") -> VerifyResult:
    try:
        doc = json.loads(data) if data.strip() else None
    except ValueError:
        doc = None
    if isinstance(doc, dict) and "refusal" in doc:
        from c10kplan.verify.refusal import PlanRefused, VerifyRefusal

        raise PlanRefused(VerifyRefusal.model_validate(doc["refusal"]))
    raise_error_document(doc)
    if not isinstance(doc, dict):
        said = f": {last_output}" if last_output else ""
        raise EnvironmentProblem(f"verify inside the namespace {describe_status(returncode=code)}"
                                 f" without a result{said}")
    return VerifyResult.model_validate(doc)


def inner_main(argv: list[str]) -> int:
    """The namespace side: loopback up, profile applied, verify, one JSON document out; its
    progress events go to the outer verify over the report pipe it was given."""
    from c10kplan.host.procfs import ProcFS

    reporter = upstream_reporter()
    try:
        opts = VerifyOptions.model_validate_json(argv[0])
        buckets = _set_up_namespace(opts.connections)
        if opts.profile:
            _apply_profile(opts.profile)
        # the storm's events are records of the one schema already: passed on as they are
        result = run_chosen(opts.model_copy(update={"netns": False}), ProcFS(), reporter, in_netns=True)
        print(result.model_copy(update={"tcp_ehash_buckets": buckets}).model_dump_json())
        return 0
    except C10kError as exc:
        return _print_error(exc)
    except (OSError, subprocess.SubprocessError) as exc:  # e.g. a file it could not write
        return _print_error(EnvironmentProblem(f"verify inside the namespace failed: {_os_error_text(exc)}"))
    except KeyboardInterrupt:
        _print_error(errors.NotReady("interrupted inside the namespace"))
        return 130


def _print_error(exc: C10kError) -> int:
    """The error document _decode turns back into the same exception; returns its exit code."""
    refusal = getattr(exc, "refusal", None)  # PlanRefused: the whole refusal crosses back
    print(json.dumps({"error": {"kind": type(exc).__name__, "message": str(exc)}}
                     | ({"refusal": refusal.model_dump(mode="json")} if refusal is not None else {})))
    return int(exc.exit_status)


def _os_error_text(exc: Exception) -> str:
    """`/x/cal.json: Permission denied` rather than `[Errno 13] Permission denied: '/x/cal.json'`."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename is not None else exc.strerror
    return str(exc) or type(exc).__name__


def _set_up_namespace(connections: int) -> int | None:  # a seam: the unit tests replace it
    """A namespace with its own TCP hash, sized for both ends of every connection (see
    processes/netns.py own_tcp_hash), then loopback up. Returns the hash's buckets; negative:
    the host's shared table (as net.ipv4.tcp_ehash_entries says it), where the kernel has no
    tcp_child_ehash_entries or refused it (a user namespace without CAP_SYS_ADMIN over the
    network namespace): the run goes on, only its lookups walk longer chains."""
    from c10kplan.host.procfs import ProcFS

    procfs = ProcFS()
    try:
        buckets = own_tcp_hash(2 * connections, procfs)
    except OSError:
        buckets = tcp_ehash_entries(procfs)
    bring_loopback_up("--netns")
    return buckets


def _apply_profile(name: str, keys: tuple[str, ...] | None = None) -> None:
    """Apply the profile's per-namespace keys (`keys`; default keys_in_scope("netns"), what
    `c10kplan apply --keys netns` takes) to this namespace's /proc/sys. The namespace is thrown
    away afterwards, so the backup goes to a temporary state dir."""
    from c10kplan.host.procfs import ProcFS
    from c10kplan.profiles import resolve
    from c10kplan.profiles.apply import apply_profile
    from c10kplan.profiles.backup import StateStore
    from c10kplan.profiles.schema import keys_in_scope

    try:
        with OwnedTempDir("netns-state") as state:
            apply_profile(resolve(name), procfs=ProcFS(), store=StateStore(state),
                          patterns=keys_in_scope("netns") if keys is None else keys)
    except C10kError as exc:
        cls = errors.ProfileError if exc.exit_status == errors.ExitStatus.BAD_INPUT else EnvironmentProblem
        raise cls(f"applying profile {name!r} inside the namespace failed: {exc}") from exc
