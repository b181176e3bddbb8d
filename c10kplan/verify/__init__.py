"""`c10kplan verify`: prove the plan on this host with the bundled server and the storm.

    options.py  VerifyOptions: what to prove
    result.py   VerifyResult, PlanSummary: what was found
    run.py      run_here: plan -> serve -> storm -> measure -> compare -> verdict, on this host
    netns.py    run_in_netns: the same run inside `unshare -n` (calls run_chosen there)
    findlimit.py  --find-limit: the breaking point against the plan's prediction
    server.py   `c10kplan serve` as a child process group
    measure.py  host samples through ProcFS (meminfo, sockstat, CPU)
    compare.py  measured vs planned rows, and the verdict (pure)
    multihost.py  --client-hosts K: a server namespace and K client namespaces, each side alone
    storm_results.py  --storm-results DIR: a fleet's merged storms against the plan and /proc/PID
    own_server.py  run_against: --target, the user's server instead of the bundled one
    target.py   the user's server measured through ProcFS, and who listens where

run_verify (below) picks one of the two and checks what needs no process first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from c10kplan.verify.options import VerifyOptions

if TYPE_CHECKING:
    from c10kplan.host.procfs import ProcFS
    from c10kplan.verify.result import VerifyResult

__all__ = ["VerifyOptions", "run_verify"]


def run_verify(opts: VerifyOptions, *, procfs: ProcFS | None = None,
               on_event: Callable[[dict], None] | None = None,
               on_output: Callable[[str], None] | None = None) -> VerifyResult:
    """Prove (or disprove) the target, with the bundled server or (opts.target) the user's own.
    Raises BadInput before anything starts when --calibrate names a file that cannot be written,
    a --pid does not listen on the target, or the processes asked for exceed the host's cap,
    NotReady when the plan fails first. With --netns, lines the namespace side writes to
    stderr go to `on_output`. Heavy imports wait until here: `import c10kplan.verify` stays light."""
    from c10kplan.host.procfs import ProcFS
    from c10kplan.verify.findlimit import run_chosen
    from c10kplan.verify.multihost import check_mtu_alone, check_options
    from c10kplan.verify.run import check_calibration_path, check_process_request

    check_options(opts)
    check_mtu_alone(opts)
    if opts.calibrate is not None:
        check_calibration_path(opts.calibrate)
    if opts.client_hosts is not None:
        from c10kplan.verify.multihost import run_multihost

        return run_multihost(opts, on_event=on_event)  # type: ignore[return-value]
    if opts.target is not None:
        from c10kplan.verify.own_server import check_target_request, run_against

        check_target_request(opts)
        return run_against(opts, procfs, on_event)
    check_process_request(opts)
    if opts.netns:
        from c10kplan.verify.netns import run_in_netns

        return run_in_netns(opts, on_event=on_event, on_output=on_output)
    return run_chosen(opts, procfs or ProcFS(), on_event)
