"""One error hierarchy; `c10kplan.cli.app.main` is the one place that maps it to exit codes.

Exit codes, for every command:
    0  OK           ready / succeeded
    1  NOT_READY    the host is not ready, a verification failed
    2  BAD_INPUT    bad input or usage (nothing was changed)
    3  ENVIRONMENT  environment error: permission, missing capability, a write the kernel refused
"""

from __future__ import annotations

import errno as _errno
from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    NOT_READY = 1
    BAD_INPUT = 2
    ENVIRONMENT = 3
    INTERRUPTED = 130


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


def errno_name(code: int | str | None) -> str:
    """The symbolic name errors are counted and reported by: "ECONNRESET" for 104; strings
    ("EOF", "TIMEOUT", ...) pass through; an int Python has no name for gives "errno<N>"; no
    errno at all (an OSError raised without one) gives "E?"."""
    if isinstance(code, str):
        return code
    if code is None:
        return "E?"
    return _errno.errorcode.get(code, f"errno{code}")


def add_counts(into: dict[str, int], other: dict[str, int]) -> dict[str, int]:
    """Add the counts of `other` (errors by name) into `into`; returns `into`."""
    for key, value in other.items():
        into[key] = into.get(key, 0) + value
    return into
