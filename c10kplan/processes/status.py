"""Exit statuses and signals in words (see the package docstring for the waitpid facts).

Signals 32..64 (SIGRTMIN..SIGRTMAX; glibc keeps 32 and 33 for itself) are mostly not members
of signal.Signals: they are named by number."""

from __future__ import annotations

import os
import signal

# A returncode for a child whose exit status was lost (reaped by someone else's waitpid: the
# kernel hands a status to one waiter only). No waitpid gives it: exit codes are 0..255 and a
# signal S is -S, so it is never read as a clean exit.
STATUS_LOST = 256


def signal_name(sig: int) -> str:
    """`SIGKILL` for 9, `signal 40` for a number signal.Signals has no member for."""
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def describe_status(status: int | None = None, *, returncode: int | None = None) -> str:
    """How a child ended, in words: `killed by SIGKILL`, `killed by signal 40`, `exited with
    status 3`, or `still running` when neither is known.

    Pass a waitpid(2) status as `status`, or a returncode (N, or -S for a signal)."""
    if status is not None:
        returncode = os.waitstatus_to_exitcode(status)
    if returncode is None:
        return "still running"
    if returncode == STATUS_LOST:
        return "exited with an unknown status (it was reaped elsewhere)"
    if returncode < 0:
        return f"killed by {signal_name(-returncode)}"
    return f"exited with status {returncode}"
