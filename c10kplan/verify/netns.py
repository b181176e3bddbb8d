"""`verify --netns`: run the whole verify inside a throwaway network namespace.

verify re-executes itself as `unshare -n -- python -m c10kplan.verify OPTIONS_JSON`. Inside:
loopback up (`ip link set lo up`: a new namespace has only `lo`, and it is down), the net.*
keys of --profile applied with `c10kplan apply`, then the ordinary verify. The result comes
back as one JSON document on stdout; errors as {"error": {"kind", "message"}} with the same
exit code. The namespace disappears when its last process exits: nothing on the host changes.

Kernel facts: net.core.somaxconn, net.ipv4.ip_local_port_range, tcp_rmem/wmem,
tcp_max_syn_backlog and tcp_tw_reuse are per network namespace (a new namespace starts from
the kernel defaults, not the host's values). fs.* and net.ipv4.tcp_mem are host-wide: fs.* is
outside `--keys 'net.*'`, and tcp_mem is not even visible in a non-initial namespace's
/proc/sys (its table is registered for init_net only), so nothing host-wide is written.
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
    bring_loopback_up,
    decode_line,
    describe_status,
    json_line,
    set_pdeathsig,
    stop_process,
    unshare_net_argv,
)
from c10kplan.verify.options import VerifyOptions

INSIDE_ENV = "C10KPLAN_VERIFY_INSIDE_NETNS"
EVENT_PREFIX = "@event "  # progress events travel on stderr, one JSON per line
INTERRUPT_WAIT = 20.0  # s for the inner verify to clean up after SIGINT before SIGKILL


def run_in_netns(opts: VerifyOptions, *, on_event: Callable[[dict], None] | None = None,
                 on_output: Callable[[str], None] | None = None):
    """Run verify inside `unshare -n`. Progress events go to `on_event`; any other line the
    namespace side writes to stderr (a warning, a crash) goes to `on_output`, without its
    newline (the CLI prints them; the library prints nothing, and by default drops them: the
    last one still ends up in the error when no result comes back)."""
    from c10kplan.verify.run import VerifyResult

    argv = [*unshare_net_argv("--netns"), sys.executable, "-m", "c10kplan.verify", opts.model_dump_json()]
    env = dict(os.environ, **{INSIDE_ENV: "1"})
    last_output = ""
    with tempfile.TemporaryFile() as out:
        # PDEATHSIG: if this process is killed outright, the namespace side dies too, and its
        # own children (server, storm) follow through theirs.
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE, env=env,
                                preexec_fn=set_pdeathsig)
        try:
            assert proc.stderr is not None
            for raw in proc.stderr:  # until the inner verify closes stderr (it exits)
                text = raw.decode("utf-8", "replace").rstrip("\n")
                if text.startswith(EVENT_PREFIX):
                    event = decode_line(text[len(EVENT_PREFIX):])
                    if on_event is not None and event is not None:
                        on_event(event)
                elif text.strip():
                    last_output = text.strip()
                    if on_output is not None:
                        on_output(text)
            proc.wait()
        except BaseException:
            # Pass the interrupt on and give the inner verify time to stop its server and storm.
            stop_process(proc, signal.SIGINT, INTERRUPT_WAIT)
            raise
        out.seek(0)
        data = out.read().decode("utf-8", "replace")
    return _decode(data, proc.returncode, VerifyResult, last_output)


def _decode(data: str, code: int, result_type, last_output: str = ""):
    try:
        doc = json.loads(data) if data.strip() else None
    except ValueError:
        doc = None
    if isinstance(doc, dict) and "error" in doc:
        kind = getattr(errors, doc["error"].get("kind", ""), None)
        cls = kind if isinstance(kind, type) and issubclass(kind, C10kError) else EnvironmentProblem
        raise cls(doc["error"].get("message", "verify failed inside the namespace"))
    if not isinstance(doc, dict):
        said = f": {last_output}" if last_output else ""
        raise EnvironmentProblem(f"verify inside the namespace {describe_status(returncode=code)}"
                                 f" without a result{said}")
    return result_type.model_validate(doc)


def inner_main(argv: list[str]) -> int:
    """The namespace side: loopback up, profile applied, verify, one JSON document out."""
    from c10kplan.host.procfs import ProcFS
    from c10kplan.verify.run import _run_here

    def emit_event(event: dict) -> None:
        sys.stderr.write(EVENT_PREFIX + json_line(event))
        sys.stderr.flush()

    try:
        opts = VerifyOptions.model_validate_json(argv[0])
        _bring_loopback_up()
        if opts.profile:
            _apply_profile(opts.profile)
        result = _run_here(opts.model_copy(update={"netns": False}), ProcFS(), emit_event, in_netns=True)
        print(result.model_dump_json())
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
    print(json.dumps({"error": {"kind": type(exc).__name__, "message": str(exc)}}))
    return int(exc.exit_status)


def _os_error_text(exc: Exception) -> str:
    """`/x/cal.json: Permission denied` rather than `[Errno 13] Permission denied: '/x/cal.json'`."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename is not None else exc.strerror
    return str(exc) or type(exc).__name__


def _bring_loopback_up() -> None:  # a seam: the unit tests replace it
    bring_loopback_up("--netns")


def _apply_profile(name: str) -> None:
    """Apply the profile's per-namespace keys (net.*) to this namespace's /proc/sys, as
    `c10kplan apply --keys 'net.*'` would. The namespace is thrown away afterwards, so the
    backup goes to a temporary state dir."""
    from c10kplan.host.procfs import ProcFS
    from c10kplan.profiles import resolve
    from c10kplan.profiles.apply import apply_profile
    from c10kplan.profiles.backup import StateStore

    try:
        with tempfile.TemporaryDirectory(prefix="c10kplan-netns-state-") as state:
            apply_profile(resolve(name), procfs=ProcFS(), store=StateStore(state), patterns=("net.*",))
    except C10kError as exc:
        cls = errors.ProfileError if exc.exit_status == errors.ExitStatus.BAD_INPUT else EnvironmentProblem
        raise cls(f"applying profile {name!r} inside the namespace failed: {exc}") from exc
