"""The one printer: tables (tabulate), JSON documents (pydantic dumps), and error lines.

Command modules build rows and models; only this module writes them to stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str], *, title: str | None = None) -> None:
    """Print one table (tabulate 'simple' format), optionally preceded by a title line."""
    from tabulate import tabulate

    if title:
        print(title)
    print(tabulate(list(rows), headers=list(headers), tablefmt="simple", disable_numparse=True))


def emit_json(doc: Any) -> None:
    """Print one JSON document: a pydantic model (model_dump mode=json) or plain data."""
    if hasattr(doc, "model_dump_json"):
        print(doc.model_dump_json(indent=2))
    else:
        print(json.dumps(doc, indent=2, sort_keys=False, default=str))


def line(text: str = "") -> None:
    print(text)


def note(text: str) -> None:
    """A side note for humans, on stderr, so stdout stays parseable."""
    print(text, file=sys.stderr)


def progress(text: str) -> None:
    """Redraw one live status line on stderr (callers draw only on a TTY)."""
    sys.stderr.write("\r" + text)
    sys.stderr.flush()


def progress_end() -> None:
    """End the live status line so the next output starts on a line of its own."""
    sys.stderr.write("\n")
    sys.stderr.flush()


def format_validation_error(exc: BaseException) -> str | None:
    """pydantic ValidationError as `loc: msg; loc: msg`, or None for anything else."""
    errors = getattr(exc, "errors", None)
    if type(exc).__name__ != "ValidationError" or not callable(errors):
        return None
    parts = []
    for err in errors():
        loc = ".".join(str(p) for p in err.get("loc", ())) or "value"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)
