"""The files a run was asked for, written from its result once it is printed; one place for
storm and verify. Paths were probed before the run (check_output); a write that still fails
(the disk filled up meanwhile) is one line and exit 3."""

from __future__ import annotations

from collections.abc import Callable

from c10kplan.errors import EnvironmentProblem


def write_outputs(result, *, histogram: str | None = None, metrics: str | None = None, report: str | None = None,
                  started_at: float = 0.0, say: Callable[[str], None] = lambda _text: None) -> None:
    """result: a StormResult (histogram, metrics), a VerifyResult (metrics, report) or a
    VerifyRefusal (metrics only: nothing ran)."""
    storm = getattr(result, "storm", result)
    jobs: list[tuple[str, str | None, Callable[[str], object]]] = [
        ("--histogram", histogram, lambda path: _histogram(path, storm, started_at)),
        ("--metrics", metrics, lambda path: _metrics(path, result)),
        ("--report", report, lambda path: _report(path, result)),
    ]
    for flag, path, write in jobs:
        if path is None:
            continue
        try:
            written = write(path)
        except OSError as exc:
            raise EnvironmentProblem(f"{flag}: cannot write {exc.filename or path}: {exc.strerror or exc}") from None
        say(f"{flag}: wrote {written}")


def _histogram(path: str, storm, started_at: float) -> str:
    from c10kplan.report.hdrlog import write_histogram_log

    write_histogram_log(path, storm, started_at)
    return path


def _metrics(path: str, result) -> str:
    from c10kplan.report.openmetrics import refusal_metrics, storm_metrics, verify_metrics, write_metrics

    if getattr(result, "verdict", None) == "REFUSED":
        text = refusal_metrics(result)
    else:
        text = verify_metrics(result) if hasattr(result, "storm") else storm_metrics(result)
    write_metrics(path, text)
    return path


def _report(path: str, result) -> str:
    from c10kplan.report.html import write_report

    return str(write_report(result, path))
