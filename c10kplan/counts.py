"""Failures counted by name: the one naming (errno_name) and the one way to add counts up; and
the one way a count is written for people (plural: "1 storm process", "20,000 connections")."""

from __future__ import annotations

import errno as _errno


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


def plural(n: int | float, noun: str, nouns: str | None = None) -> str:
    """`n noun` with thousands separators, the noun in the plural unless n is 1:
    plural(1, "server worker") -> "1 server worker", plural(10000, "process", "processes") ->
    "10,000 processes"."""
    many = nouns if nouns is not None else noun + "s"
    return f"{n:,} {noun if n == 1 else many}"
