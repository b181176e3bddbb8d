"""What a tree holds, exactly: every entry's kind, mode, owner and bytes (symlinks as their
target, never followed), and the temp files a killed writer would leave."""

from __future__ import annotations

import os
import stat
from pathlib import Path

Entry = tuple[str, int, int, int, bytes]


def full_snapshot(root: Path, skip: tuple[str, ...] = ()) -> dict[str, Entry]:
    """rel path -> (kind, mode, uid, gid, content); directories included, symlinks not followed.
    `skip`: top-level names left out (a `proc` symlink into the live /proc)."""
    out: dict[str, Entry] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        if rel_dir == ".":
            dirnames[:] = [d for d in dirnames if d not in skip]
            filenames = [f for f in filenames if f not in skip]
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if stat.S_ISLNK(st.st_mode):
                kind, data = "link", os.readlink(path).encode()
            elif stat.S_ISDIR(st.st_mode):
                kind, data = "dir", b""
            elif stat.S_ISREG(st.st_mode):
                kind, data = "file", Path(path).read_bytes()
            else:
                kind, data = "other", b""
            out[rel] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, data)
    return out


def temp_files(*dirs: Path) -> list[str]:
    """Every `.*.tmp` file under `dirs` (what atomic writes leave when killed)."""
    found = []
    for d in dirs:
        for dirpath, _dirs, files in os.walk(d, followlinks=False):
            found += [os.path.join(dirpath, f) for f in files
                      if f.startswith(".") and f.endswith(".tmp")]
    return found
