"""Locate a profile: a path to a .toml file, or the name of a shipped profile.

Shipped profiles are searched, in order, in:
1. the directories in $C10KPLAN_PROFILES_DIR (os.pathsep-separated),
2. the package's own `c10kplan/profiles/data/` (package data, found with importlib.resources),
   so a source checkout, an editable install, a wheel installed with `--target`, `--prefix`
   or `--user` all find the same five files next to the code that reads them.
"""

from __future__ import annotations

import difflib
import os
from importlib.resources import files
from pathlib import Path

from c10kplan.errors import ProfileError

PROFILES_DIR_ENV = "C10KPLAN_PROFILES_DIR"
SUFFIX = ".toml"


def package_dir() -> Path:
    """The shipped profiles inside the installed package. Every install this tool supports
    unpacks the package onto the file system, so the resource is a real directory (a zipped
    import would need importlib.resources.as_file; nothing ships c10kplan that way)."""
    return Path(str(files("c10kplan.profiles") / "data"))


def shipped_dirs() -> list[Path]:
    """Directories that hold shipped profiles, in search order (existing ones only)."""
    dirs: list[Path] = []
    env = os.environ.get(PROFILES_DIR_ENV)
    if env:
        dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
    dirs.append(package_dir())
    seen: list[Path] = []
    for d in dirs:
        if d.is_dir() and d not in seen:
            seen.append(d)
    return seen


def available() -> dict[str, Path]:
    """Shipped profile names -> files; the first directory that has a name wins."""
    found: dict[str, Path] = {}
    for d in shipped_dirs():
        for f in sorted(d.glob(f"*{SUFFIX}")):
            found.setdefault(f.stem, f)
    return found


def complete_profile(incomplete: str) -> list[str]:
    """Shell completion for `--profile`: the shipped names starting with what was typed."""
    return [name for name in sorted(available()) if name.startswith(incomplete)]


def is_path(ref: str) -> bool:
    """A reference is a file path when it ends with .toml or contains a path separator."""
    return ref.endswith(SUFFIX) or "/" in ref or os.sep in ref


def locate(ref: str, *, near: Path | None = None) -> Path:
    """The file for `ref`. Names are looked up next to `near` (the child profile's folder,
    for `extends`) and then in the shipped directories. Raises ProfileError when not found."""
    if not ref or not ref.strip():
        raise ProfileError("empty profile name")
    if is_path(ref):
        path = Path(ref)
        if not path.is_absolute() and near is not None:
            path = near / path
        if not path.is_file():
            raise ProfileError(f"{ref}: no such profile file")
        return path
    if near is not None:
        sibling = near / f"{ref}{SUFFIX}"
        if sibling.is_file():
            return sibling
    names = available()
    if ref in names:
        return names[ref]
    close = difflib.get_close_matches(ref, list(names), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    known = ", ".join(sorted(names)) or "none found"
    raise ProfileError(f"unknown profile {ref!r}{hint} (shipped profiles: {known})")
