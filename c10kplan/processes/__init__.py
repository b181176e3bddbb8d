"""The one child-process layer: every process c10kplan starts is started, heard, reaped and
stopped here (serve workers, storm processes, verify's server and its namespace side).

    children.py  ChildSet: fork a function or exec a command, with a report pipe; pump reports;
                 reap; stop with a deadline (a signal, then SIGKILL, flagged as not clean)
    reports.py   the one report schema: JSON lines {"event": KIND, ...}; Reporter (child side)
    cap.py       how many processes this host allows; refusals before anything forks
    tempdirs.py  temp dirs named for their owner pid, swept once the owner is dead
    status.py    exit statuses and signals in words
    limits.py    RLIMIT_NOFILE
    wakeup.py    signals into a poll loop (set_wakeup_fd)
    netns.py     `unshare -n` and loopback in a fresh network namespace

Facts this layer relies on (Linux), explained here once:
- prctl(PR_SET_PDEATHSIG, sig) (PR_SET_PDEATHSIG = 1 in <linux/prctl.h>, Linux >= 2.1.57): the
  kernel sends `sig` to a process when the thread that forked it exits, even when that parent
  is SIGKILLed and cannot clean up. It survives execve (for non-setuid programs), so an exec'd
  child is covered too. If the parent died before prctl ran, the signal never comes: a forked
  child compares os.getppid() with the parent's pid afterwards and exits at once if it changed.
  Every child gets it, so a chain (verify -> serve -> workers, verify -> storm processes, outer
  verify -> unshare -> inner verify -> ...) unwinds from whichever link was killed. What the
  kernel cannot clean (a temp dir) is swept by the next run (tempdirs.py).
- Exit status: waitpid(2) packs "exited with code N" or "killed by signal S" into one int;
  os.waitstatus_to_exitcode gives N, or -S for a signal (as Popen.returncode does).
- Process groups: a child started in a new session leads its own group (pgid == its pid), so
  killpg reaches it and every descendant that stayed in the group, even after it exited.
- Pipes: a write of at most PIPE_BUF (4096) bytes is atomic, so one short JSON line per write
  never interleaves with another writer's; a reader may still get a line in pieces. A pipe's
  reader sees EOF once every write end is closed: when the child (and anything it forked that
  kept the fd) has exited.
"""

from c10kplan.processes.cap import ProcessCap, check_processes, process_cap
from c10kplan.processes.children import KILL_WAIT, Child, ChildSet, die_with_parent, set_pdeathsig, upstream_reporter
from c10kplan.processes.limits import NOFILE_UNLIMITED, hard_nofile, raise_nofile_soft_limit
from c10kplan.processes.netns import bring_loopback_up, own_tcp_hash, tcp_ehash_entries, unshare_net_argv
from c10kplan.processes.reports import (
    EVENT,
    Reporter,
    decode_line,
    encode_line,
    json_line,
    split_lines,
)
from c10kplan.processes.status import STATUS_LOST, describe_status, signal_name
from c10kplan.processes.tempdirs import OwnedTempDir, sweep_stale
from c10kplan.processes.wakeup import read_wake_bytes, wake_on_signals

__all__ = [
    "EVENT", "KILL_WAIT", "NOFILE_UNLIMITED", "STATUS_LOST", "Child", "ChildSet", "OwnedTempDir", "ProcessCap", "Reporter",
    "bring_loopback_up", "check_processes", "own_tcp_hash", "tcp_ehash_entries", "decode_line", "describe_status", "die_with_parent", "encode_line",
    "hard_nofile", "json_line", "process_cap", "raise_nofile_soft_limit", "read_wake_bytes", "set_pdeathsig",
    "signal_name", "split_lines", "sweep_stale", "unshare_net_argv", "upstream_reporter", "wake_on_signals",
]
