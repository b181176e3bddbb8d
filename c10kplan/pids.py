"""Is a process still there? stdlib only and free of c10kplan imports: the netns reaper
(`c10kplan.netns.reaper`, via `netns.ip`) imports it and must start in milliseconds.

kill(2) with signal 0 checks that the pid exists without sending anything: ESRCH
(ProcessLookupError) when no process has it, EPERM when it exists under another user. A zombie
still has its pid, so it counts as alive until it is reaped.
"""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True while a process with this pid exists (any user; a zombie counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True
