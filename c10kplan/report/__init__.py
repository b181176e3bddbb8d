"""What a run leaves behind besides its printout, each from the run's result record alone:

    hdrlog.py       storm --histogram FILE: HdrHistogram interval log (connect, corrected, raw)
    openmetrics.py  storm / verify --metrics FILE: Prometheus text format (textfile collector)
    plots.py        the report's PNGs (matplotlib, the `plot` extra)
    html.py         verify --report DIR: report.html showing them, offline

`check_output` probes a FILE or DIR option before the run, so a path that cannot be written is
one line and exit 2 before anything starts, not an error after a long run.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from c10kplan.errors import BadInput, C10kError, EnvironmentProblem


def check_output(path: str, flag: str, *, folder: bool = False,
                 refused: type[C10kError] = BadInput) -> Path:
    """`flag FILE`: its folder exists and takes a new file; `flag DIR` (folder=True): DIR is a
    folder or can be made in an existing one. Probed with a temporary file (created and removed
    at once), so a read-only mount or a missing permission shows up here (as `refused`)."""
    if not path:
        raise BadInput(f"{flag} needs a {'folder' if folder else 'file'} name")
    target = Path(path)
    if folder:
        if target.exists() and not target.is_dir():
            raise BadInput(f"{flag}: {path} is not a folder")
        probe_in = target if target.is_dir() else target.parent
    else:
        if target.is_dir():
            raise BadInput(f"{flag}: {path} is a folder")
        probe_in = target.parent
    if not probe_in.is_dir():
        raise BadInput(f"{flag}: folder {probe_in} does not exist")
    try:
        fd, probe = tempfile.mkstemp(dir=probe_in, prefix=".c10kplan-probe-")
    except OSError as exc:
        raise refused(f"{flag}: cannot create a file in {probe_in}: {exc.strerror}") from None
    os.close(fd)
    os.unlink(probe)
    return target


def check_plotting(flag: str) -> None:
    """The report's figures need matplotlib (the `plot` extra)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise EnvironmentProblem(f"{flag} needs matplotlib: pip install 'c10kplan[plot]'") from None
