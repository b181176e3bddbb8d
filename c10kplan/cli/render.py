"""The one printer: tables (tabulate), JSON documents (pydantic dumps), and error lines.

Command modules build rows and models; only this module writes them to stdout.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from c10kplan.counts import plural  # noqa: F401 (the printers' one way to write a count)


# Width: tabulate's "simple" format puts two spaces between columns. A text column is only
# wrapped down to MIN_WRAP characters; below that it moves under its row instead.
GAP = 2
HEADER_PAD = 2
MIN_WRAP = 24
UNDER_INDENT = "    "


def width(stream: Any = None) -> int | None:
    """The width output must fit on a terminal: $COLUMNS when set, else the terminal's
    (shutil.get_terminal_size). None (no limit) when the stream (stdout, or stderr for notes)
    is not a terminal (a pipe, a file), so scripts and grep see whole lines. (COLUMNS alone is
    not enough: GNU readline exports it into the environment of every child of an interactive
    Python, pytest included.)"""
    if not (stream or sys.stdout).isatty():
        return None
    return shutil.get_terminal_size().columns


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str], *, title: str | None = None) -> None:
    """Print one table (tabulate 'simple' format), optionally preceded by a title line, fitted
    to width(): long text columns are wrapped, and when even that cannot fit, the widest text
    column moves under its row (`    header: text`)."""
    cells = [["" if c is None else str(c) for c in row] for row in rows]
    limit = width()
    if title:
        line(title)
    print(_fit(cells, [str(h) for h in headers], limit))


def _tabulate(rows: list[list[str]], headers: list[str]) -> str:
    from tabulate import tabulate

    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)


def _widest(text: str) -> int:
    return max((len(ln) for ln in text.split("\n")), default=0)


def _share(room: int, natural: dict[int, int]) -> dict[int, int]:
    """Split `room` characters among columns: a column that needs less than an equal share keeps
    its natural width, the rest share what is left equally (water filling)."""
    out: dict[int, int] = {}
    left = dict(natural)
    while left:
        each = room // len(left)
        small = {i: w for i, w in left.items() if w <= each}
        if not small:
            out.update({i: max(each, 1) for i in left})
            return out
        out.update(small)
        room -= sum(small.values())
        for i in small:
            del left[i]
    return out


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    # Whole words only: a flag or a key split in two cannot be copied.
    return textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False) or [""]


def _fit(rows: list[list[str]], headers: list[str], limit: int | None) -> str:
    text = _tabulate(rows, headers)
    if limit is None or _widest(text) <= limit:
        return text
    under: list[int] = []  # columns moved under their rows
    while True:
        keep = [i for i in range(len(headers)) if i not in under]
        # tabulate pads each header by MIN_PADDING (2): a column is at least header + 2 wide.
        natural = {i: max(len(headers[i]) + HEADER_PAD, *(_widest(r[i]) for r in rows))
                   for i in keep}
        text_cols = [i for i in keep if natural[i] > MIN_WRAP and any(" " in r[i] for r in rows)]
        if not text_cols and not under:  # figures only: nothing wraps, split the columns instead
            return _split(rows, headers, limit)
        fixed = sum(natural[i] for i in keep if i not in text_cols) + GAP * (len(keep) - 1)
        room = limit - fixed
        if not text_cols or room >= MIN_WRAP * len(text_cols):
            widths = _share(room, {i: natural[i] for i in text_cols}) if text_cols else {}
            body = [["\n".join(_wrap(r[i], widths[i])) if i in widths else r[i] for i in keep]
                    for r in rows]
            text = _tabulate(body, [headers[i] for i in keep])
            if under:
                text = _interleave(text, body, [(headers[i], [r[i] for r in rows])
                                                for i in under], limit)
            # A word longer than its column's share still sticks out: move one more column.
            if _widest(text) <= limit or len(keep) == 1:
                return text
        # The widest text column goes under its row; when none is left, the widest figure
        # (never the first column: it names the row).
        movable = text_cols or keep[1:] or keep
        under.append(max(movable, key=lambda i: natural[i]))


def _split(rows: list[list[str]], headers: list[str], limit: int) -> str:
    """A table of figures too wide for `limit`, as several tables one under the other, each
    with the first column (the row's name) and as many of the next columns as fit."""
    def natural(i: int) -> int:
        return max(len(headers[i]) + HEADER_PAD, *(_widest(r[i]) for r in rows))

    groups: list[list[int]] = []
    used = natural(0)
    for i in range(1, len(headers)):
        if groups and used + GAP + natural(i) <= limit:
            groups[-1].append(i)
            used += GAP + natural(i)
        else:
            groups.append([i])
            used = natural(0) + GAP + natural(i)
    return "\n\n".join(_tabulate([[r[0], *(r[i] for i in g)] for r in rows],
                                  [headers[0], *(headers[i] for i in g)])
                        for g in groups or [[]])


def _interleave(text: str, body: list[list[str]], moved: list[tuple[str, list[str]]],
                limit: int) -> str:
    """The rendered table with each moved column's text under its row."""
    lines = text.split("\n")
    out, at = lines[:2], 2  # "simple": the header line, then the dashes
    for n, row in enumerate(body):
        height = max(c.count("\n") + 1 for c in row)
        out += lines[at:at + height]
        at += height
        for header, values in moved:
            if values[n] and values[n] != "-":
                out += [UNDER_INDENT + ln for ln in _wrap(f"{header}: {values[n]}",
                                                          limit - len(UNDER_INDENT))]
    return "\n".join(out)


# Every --json document starts with "schema_version"; its schema is docs/schema/<name>.schema.json
# (c10kplan/cli/schemas.py). Raise it when a field is renamed, removed or changes meaning.
SCHEMA_VERSION = 1


def emit_json(doc: Any) -> None:
    """Print one JSON document: a pydantic model (model_dump mode=json) or a dict, as one object
    whose first field is `schema_version`."""
    data = doc.model_dump(mode="json") if hasattr(doc, "model_dump") else doc
    if not isinstance(data, dict):
        raise TypeError(f"a --json document is one JSON object, not {type(data).__name__}")
    print(json.dumps({"schema_version": SCHEMA_VERSION, **data}, indent=2, ensure_ascii=False,
                     default=str))


def _fill(text: str, limit: int | None) -> str:
    """Prose wrapped to `limit` at whole words (continuations indented two spaces)."""
    if limit is None or len(text) <= limit or "\n" in text:
        return text
    import textwrap

    return textwrap.fill(text, limit, subsequent_indent="  ", break_long_words=False,
                         break_on_hyphens=False)


def line(text: str = "") -> None:
    """One line of prose, wrapped to width()."""
    print(_fill(text, width()))


def document(text: str) -> None:
    """A file's text (an export) exactly as it is: never wrapped."""
    print(text)


def note(text: str) -> None:
    """A side note for humans, on stderr, so stdout stays parseable; wrapped to the terminal
    when stderr is one (continuations indented two spaces)."""
    print(_fill(text, width(sys.stderr)), file=sys.stderr)


def progress(text: str) -> None:
    """Redraw one live status line on stderr (callers draw only on a TTY)."""
    sys.stderr.write("\r" + text)
    sys.stderr.flush()


def progress_end() -> None:
    """End the live status line so the next output starts on a line of its own."""
    sys.stderr.write("\n")
    sys.stderr.flush()


# Model fields that carry a unit their option does not (p99_max_ms <- --p99-max MS).
_UNIT_SUFFIXES = ("_ms", "_us", "_s", "_bytes")
# pydantic's prefixes for errors raised inside validators: they say nothing to a user.
_MSG_PREFIXES = ("Value error, ", "Assertion failed, ")


def format_validation_error(exc: BaseException, options: Mapping[str, str] | None = None) -> str | None:
    """pydantic ValidationError as `loc: msg; loc: msg`, or None for anything else. A top-level
    field the command line sets is named by its option (`options`: field -> `--flag`, from
    app.option_names; a unit suffix such as `_ms` is dropped first when only that matches)."""
    errors = getattr(exc, "errors", None)
    if type(exc).__name__ != "ValidationError" or not callable(errors):
        return None
    options = options or {}
    parts = []
    for err in errors():
        path = tuple(err.get("loc", ()))
        loc = ".".join(str(p) for p in path)  # empty: a check of the whole model
        if len(path) == 1 and isinstance(path[0], str):
            loc = options.get(loc) or next(
                (options[loc[:-len(u)]] for u in _UNIT_SUFFIXES
                 if loc.endswith(u) and loc[:-len(u)] in options), loc)
        msg = str(err.get("msg", "invalid"))
        for prefix in _MSG_PREFIXES:
            msg = msg.removeprefix(prefix)
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)
