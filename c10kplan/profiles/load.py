"""Load one profile file (TOML) into a `Layer`: the raw tables, not yet merged or validated.

The file is read with the one bounded read (c10kplan/boundedread.py): a regular file of at
most PROFILE_LIMIT (1 MiB) bytes. tomllib recurses once per nesting level and raises
RecursionError on a 5,000-level array, and ValueError for an integer past Python's int-str
limit (4,300 digits); both are one ProfileError line here. A sysctl key nests at most
MAX_KEY_DEPTH levels (the deepest real one, net.ipv4.conf.all.rp_filter, has 5).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from c10kplan.boundedread import PROFILE_LIMIT, NotText, read_text
from c10kplan.errors import ProfileError

TOP_LEVEL = {"name", "summary", "extends", "allow_unknown", "target", "sysctl", "limits"}
MAX_KEY_DEPTH = 16


@dataclass(frozen=True)
class Layer:
    """One profile file as written: its own keys only."""

    name: str
    path: Path
    summary: str | None = None
    extends: str | None = None
    allow_unknown: bool = False
    target: dict[str, Any] | None = None
    sysctl: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)


def flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{net: {core: {somaxconn: 1}}}` -> `{"net.core.somaxconn": 1}`. TOML reads an unquoted
    dotted key as nested tables; a quoted key stays flat. Both spellings give the same key, in
    file order. ValueError for a key nested deeper than MAX_KEY_DEPTH (checked on an explicit
    stack of iterators: no recursion)."""
    out: dict[str, Any] = {}
    stack = [(prefix, iter(table.items()))]
    while stack:
        base, items = stack[-1]
        for k, v in items:
            full = f"{base}.{k}" if base else k
            if not isinstance(v, dict):
                out[full] = v
                continue
            if len(stack) >= MAX_KEY_DEPTH:
                raise ValueError(f"{full[:60]}...: a key nests at most {MAX_KEY_DEPTH} levels")
            stack.append((full, iter(v.items())))
            break
        else:
            stack.pop()
    return out


def load_layer(path: Path) -> Layer:
    """Parse `path`. Raises ProfileError (file + reason) for unreadable or non-TOML files and
    for top-level entries of the wrong shape."""
    try:
        doc = tomllib.loads(read_text(path, PROFILE_LIMIT))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not a valid TOML file: {exc}") from None
    except NotText:
        raise ProfileError(f"{path}: not a valid TOML file: not UTF-8 text") from None
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except RecursionError:
        raise ProfileError(f"{path}: not a valid TOML file: arrays or tables nested too deeply") from None
    except ValueError as exc:  # tomllib: an integer past Python's 4,300-digit int-str limit
        raise ProfileError(f"{path}: not a valid TOML file: {str(exc).split(';')[0]}") from None

    unknown = sorted(set(doc) - TOP_LEVEL)
    if unknown:
        raise ProfileError(f"{path}: {unknown[0]}: unknown top-level entry "
                           f"(expected {', '.join(sorted(TOP_LEVEL))})")

    def typed(name: str, kind: type, default: Any) -> Any:
        value = doc.get(name, default)
        if value is not default and not isinstance(value, kind):
            raise ProfileError(f"{path}: {name}: expected {kind.__name__}, got "
                               f"{type(value).__name__}")
        return value

    name = typed("name", str, None) or path.stem
    return Layer(
        name=name,
        path=path,
        summary=typed("summary", str, None),
        extends=typed("extends", str, None),
        allow_unknown=typed("allow_unknown", bool, False),
        target=typed("target", dict, None),
        sysctl=_flat_sysctl(path, typed("sysctl", dict, {})),
        limits=typed("limits", dict, {}),
    )


def _flat_sysctl(path: Path, table: dict[str, Any]) -> dict[str, Any]:
    try:
        return flatten(table)
    except ValueError as exc:
        raise ProfileError(f"{path}: sysctl.{exc}") from None
