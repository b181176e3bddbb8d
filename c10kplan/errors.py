"""One error hierarchy; `c10kplan.cli.app.main` is the one place that maps it to exit codes.

Exit codes, for every command:
    0  OK           ready / succeeded
    1  NOT_READY    the host is not ready, a verification failed
    2  BAD_INPUT    bad input or usage (nothing was changed)
    3  ENVIRONMENT  environment error: permission, missing capability, a write the kernel refused
  130  INTERRUPTED  Ctrl-C (SIGINT: 128 + 2)
  143  TERMINATED   SIGTERM (128 + 15), where a run catches it to stop its processes (Terminated)
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    NOT_READY = 1
    BAD_INPUT = 2
    ENVIRONMENT = 3
    INTERRUPTED = 130
    TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised by the handler a run installs: it stops everything the way Ctrl-C does
    (a KeyboardInterrupt, so every cleanup path sees it), but exits 143 and says `terminated`."""


class C10kError(Exception):
    """Base of every error the tool reports as one line (no traceback unless --traceback)."""

    exit_status: ExitStatus = ExitStatus.BAD_INPUT


class BadInput(C10kError):
    """The user gave something we cannot use: a value, a file, a name."""


class ProfileError(BadInput):
    """A profile cannot be located, loaded, merged or validated."""


class HostFactsError(BadInput):
    """A --host-facts or --calibration file is missing or malformed."""


class EnvironmentProblem(C10kError):
    """The environment does not allow what was asked: permission, capability, a kernel refusal."""

    exit_status = ExitStatus.ENVIRONMENT


class ApplyFailed(EnvironmentProblem):
    """A sysctl or file write failed; everything already written was restored."""


class NotReady(C10kError):
    """The host is not ready for the target, or a verification failed."""

    exit_status = ExitStatus.NOT_READY
