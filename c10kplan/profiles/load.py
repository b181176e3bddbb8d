"""Load one profile file (TOML) into a `Layer`: the raw tables, not yet merged or validated."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from c10kplan.errors import ProfileError

TOP_LEVEL = {"name", "summary", "extends", "allow_unknown", "target", "sysctl", "limits"}


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
    dotted key as nested tables; a quoted key stays flat. Both spellings give the same key."""
    out: dict[str, Any] = {}
    for k, v in table.items():
        full = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            out.update(flatten(v, full))
        else:
            out[full] = v
    return out


def load_layer(path: Path) -> Layer:
    """Parse `path`. Raises ProfileError (file + reason) for unreadable or non-TOML files and
    for top-level entries of the wrong shape."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not a valid TOML file: {exc}") from None
    except UnicodeDecodeError:
        raise ProfileError(f"{path}: not a valid TOML file: not UTF-8 text") from None
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror or exc}") from None

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
        sysctl=flatten(typed("sysctl", dict, {})),
        limits=typed("limits", dict, {}),
    )
