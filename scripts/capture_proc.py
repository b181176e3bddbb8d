"""Capture the /proc and /sys files c10kplan reads into a small tree, for tests or for
planning elsewhere with `c10kplan check --root DIR`.

    python scripts/capture_proc.py tests/fixtures/proc/live [--root /] [--pid PID]

Sample output:

    captured 26 files from / into tests/fixtures/proc/live
      proc/meminfo
      proc/self/limits
      ...
    facts: kernel 6.18.44-fc-v782, nofile 20000/20000, CAP_SYS_RESOURCE no, 2 CPUs
    notes: link speed: unknown for eth0, ifb0, ifb1 (virtual NIC or -1)

It runs `collect_facts` through a recording ProcFS, so the tree holds exactly the files the
tool reads (no hand-kept list to drift). /proc/self/smaps is cut after its first
KernelPageSize line (the only line used). Files that could not be read are not copied: they
stay unknown in the tree too. Re-running into an existing directory replaces its files.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from c10kplan.host.commands import HostCommands  # noqa: E402
from c10kplan.host.inspect import collect_facts  # noqa: E402
from c10kplan.host.procfs import ProcFS  # noqa: E402


class RecordingProcFS(ProcFS):
    """A ProcFS that remembers the text of every file it read."""

    def __init__(self, root: str | None = None) -> None:
        super().__init__(root)
        self.files: dict[str, str] = {}
        self.dirs: set[str] = set()

    def read(self, relpath: str) -> str | None:
        text = super().read(relpath)
        if text is not None:
            self.files[relpath.lstrip("/")] = text
        return text

    def listdir(self, relpath: str) -> list[str]:
        self.dirs.add(relpath.lstrip("/"))
        return super().listdir(relpath)


class RecordingCommands(HostCommands):
    """Program outputs (the netfilter ruleset) kept as ROOT/commands/NAME, where a tree has them."""

    def output(self, name: str) -> str | None:
        text = super().output(name)
        if text is not None:
            self.procfs.files[f"commands/{name}"] = text  # type: ignore[attr-defined]
        return text


def trim(relpath: str, text: str) -> str:
    if relpath.endswith("/smaps"):
        lines = []
        for line in text.splitlines():
            lines.append(line)
            if line.startswith("KernelPageSize:"):
                break
        return "\n".join(lines) + "\n"
    return text


def capture(out: Path, root: str | None = None, pid: int | None = None) -> RecordingProcFS:
    procfs = RecordingProcFS(root)
    facts = collect_facts(procfs, pid, commands=RecordingCommands(procfs))
    for top in ("proc", "sys", "commands"):
        shutil.rmtree(out / top, ignore_errors=True)
    for relpath, text in sorted(procfs.files.items()):
        dest = out / relpath
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(trim(relpath, text), encoding="utf-8")
    # Interfaces whose speed could not be read still exist, as directories holding an empty
    # .keep file so that git keeps them.
    for rel in procfs.dirs:
        for name in ProcFS.listdir(procfs, rel):
            folder = out / rel / name
            folder.mkdir(parents=True, exist_ok=True)
            if not any(folder.iterdir()):
                (folder / ".keep").touch()
    print(f"captured {len(procfs.files)} files from {procfs.root} into {out}")
    for relpath in sorted(procfs.files):
        print(f"  {relpath}")
    cap = {True: "yes", False: "no", None: "unknown"}[facts.can_raise_hard_limit]
    print(f"facts: kernel {facts.kernel_release}, nofile {facts.nofile_soft}/{facts.nofile_hard},"
          f" CAP_SYS_RESOURCE {cap}, {facts.cpu_count} CPUs")
    for note in facts.notes:
        print(f"notes: {note}")
    return procfs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="directory to write DIR/proc/... and DIR/sys/... into")
    ap.add_argument("--root", default=None, help="tree to read (default /)")
    ap.add_argument("--pid", type=int, default=None, help="capture this process's limits")
    args = ap.parse_args()
    capture(args.out, args.root, args.pid)


if __name__ == "__main__":
    main()
