"""kill -9 at chosen points of an apply, then recover and compare: the engine of
test_apply_kill.py, importable both by pytest and by a child running inside `unshare -n`.

A kill point is a step number: apply calls its `on_step` hook before every change on disk
(each sysctl write and read-back, each mkdir, temp-file create / write / chmod / fsync /
rename / directory fsync, each backup save). A forked child runs the apply with a hook that
sends itself SIGKILL at step k, so the kill is real (no handler, no cleanup) and lands at a
deterministic place, not after a timed window. The parent then recovers (rollback, or a
next apply followed by rollback, or a rollback that is itself killed and run again) and checks
that every byte, mode and owner is back and no temp file or backup is left.

Run as `python -m tests.hostile.kill_points fake|netns WORKDIR N SEED [--tmpfs]`: prints one JSON
document with the counts (test_apply_kill.py runs it under `unshare -m` / `unshare -n -m`).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from c10kplan.host.procfs import ProcFS
from c10kplan.profiles.apply import apply_profile, rollback
from c10kplan.profiles.backup import StateStore
from c10kplan.profiles.merge import resolve
from c10kplan.profiles.schema import SUPPORTED
from tests.hostile.tree_state import full_snapshot, temp_files

def killer(k: int) -> Callable[[str], None]:
    """An on_step hook that SIGKILLs this process at its k-th step."""
    n = 0

    def on_step(_name: str) -> None:
        nonlocal n
        n += 1
        if n == k:
            os.kill(os.getpid(), signal.SIGKILL)

    return on_step


def counter() -> tuple[Callable[[str], None], list[str]]:
    seen: list[str] = []
    return seen.append, seen


def in_child(fn: Callable[[], None]) -> int:
    """Run fn in a forked child and wait for it (one child at a time: a bounded fork);
    returns the signal that ended it, or minus its exit code."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fn()
            code = 0
        except BaseException as exc:  # noqa: BLE001 - the parent reads only the status
            os.write(2, f"kill_points child: {exc!r}\n".encode())
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else -os.waitstatus_to_exitcode(status)


@dataclass
class Scenario:
    """One apply to kill: a tree (root), a state dir, what to apply, and what a prior complete
    apply left (or nothing)."""

    root: Path
    state: Path
    profile: str
    patterns: tuple[str, ...] = ()
    prior: str | None = None  # a profile applied (and completed) before the one killed
    skip: tuple[str, ...] = ()  # top-level names of root not compared (a /proc symlink)
    live_keys: tuple[str, ...] = ()  # keys read from the live /proc/sys and compared too
    names: list[str] = field(default_factory=list)

    def store(self) -> StateStore:
        return StateStore(self.state)

    def apply(self, name: str, on_step: Callable[[str], None] | None = None) -> None:
        apply_profile(resolve(name), procfs=ProcFS(self.root), store=self.store(),
                      patterns=self.patterns, persist=True, on_step=on_step)

    def prepare(self) -> None:
        if self.prior:
            self.apply(self.prior)

    def state_of_world(self) -> tuple[object, ...]:
        live = {k: Path("/proc/sys/" + k.replace(".", "/")).read_bytes() for k in self.live_keys}
        return full_snapshot(self.root, skip=self.skip), live

    def count_steps(self) -> int:
        """Steps of one apply, counted in-process (then rolled back)."""
        self.prepare()
        hook, seen = counter()
        self.apply(self.profile, hook)
        rollback(self.store())
        return len(seen)


@dataclass
class Outcome:
    killed: int = 0  # children that died of SIGKILL at their step
    restored: int = 0  # of those, recovered to every byte, mode and owner, no temp, no backup
    nested: int = 0  # recoveries that were themselves killed, then run again
    failures: list[str] = field(default_factory=list)


def run_kill_points(scenarios: list[Scenario], n: int, seed: int) -> Outcome:
    """Kill an apply at `n` random (scenario, step) points; recover each and compare."""
    rng = random.Random(seed)
    steps = []
    for sc in scenarios:
        before = sc.state_of_world()
        steps.append(sc.count_steps())
        assert sc.state_of_world() == before, "apply + rollback without a kill is not exact"
    out = Outcome()
    for i in range(n):
        idx = rng.randrange(len(scenarios))
        sc, k = scenarios[idx], rng.randint(1, steps[idx])
        before = sc.state_of_world()
        sc.prepare()
        sig = in_child(lambda: sc.apply(sc.profile, killer(k)))
        if sig != signal.SIGKILL:
            out.failures.append(f"#{i} {sc.profile} step {k}/{steps[idx]}: child ended {sig}")
            continue
        out.killed += 1
        how = rng.choice(["rollback", "next apply", "killed rollback"])
        if how == "next apply":  # the next apply recovers first, then rollback undoes it
            sc.apply(sc.prior or sc.profile)
        elif how == "killed rollback":  # a rollback killed half-way, then run again
            hook = killer(rng.randint(1, 12))
            if in_child(lambda: rollback(sc.store(), on_step=hook)) == signal.SIGKILL:
                out.nested += 1
        rollback(sc.store())
        problems = []
        if sc.state_of_world() != before:
            problems.append("tree differs")
        if left := temp_files(sc.root, sc.state):
            problems.append(f"temp files left: {left}")
        if (sc.state / "backup.json").exists():
            problems.append("backup left")
        if problems:
            out.failures.append(f"#{i} {sc.profile} step {k}/{steps[idx]} then {how}: "
                                f"{'; '.join(problems)}")
        else:
            out.restored += 1
    return out


def fake_scenarios(work: Path) -> list[Scenario]:
    """A fake proc tree with every supported key and an admin's sysctl.d file (0640, another
    owner) that --persist replaces: three applies to kill, two over an earlier one."""
    from tests.unit.test_profiles_apply import make_tree

    root = make_tree(work / "root")
    _admin_file(root)
    common = {"root": root, "state": work / "state"}
    return [Scenario(profile="c1m", **common), Scenario(profile="c1m", prior="c10k", **common),
            Scenario(profile="c100k", prior="base", **common)]


def netns_scenarios(work: Path) -> list[Scenario]:
    """Inside a fresh network namespace: root/proc is a symlink to the live /proc, so the
    apply writes this namespace's net.* keys (and only those: the per-namespace keys are
    selected by name, host-wide ones never); the persisted files go to root/etc."""
    keys = tuple(k for k, s in SUPPORTED.items() if s.scope == "netns")
    root = work / "root"
    root.mkdir()
    _admin_file(root)
    (root / "proc").symlink_to("/proc")
    common = {"root": root, "state": work / "state", "patterns": keys, "skip": ("proc",),
              "live_keys": keys}
    return [Scenario(profile="c1m", **common), Scenario(profile="c1m", prior="c10k", **common)]


def _admin_file(root: Path) -> None:
    admin = root / "etc" / "sysctl.d" / "90-c10kplan.conf"
    admin.parent.mkdir(parents=True)
    admin.write_text("# an admin's file\nnet.core.somaxconn = 1024\n")
    os.chmod(admin, 0o640)
    os.chown(admin, 4321, 8765)


SCENARIOS = {"fake": fake_scenarios, "netns": netns_scenarios}


def main(argv: list[str]) -> None:
    """KIND WORKDIR N SEED [--tmpfs]: with --tmpfs (inside `unshare -m`, whose mounts are
    private) WORKDIR is first mounted as a tmpfs, so the thousands of fsyncs cost nothing and
    a disk shared with other jobs does not set the test's time."""
    kind, work, n, seed = argv[0], Path(argv[1]), int(argv[2]), int(argv[3])
    if "--tmpfs" in argv[4:]:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "c10kplan-kill",
                        str(work)], check=True)
    out = run_kill_points(SCENARIOS[kind](work), n, seed)
    print(json.dumps(out.__dict__))


if __name__ == "__main__":
    main(sys.argv[1:])
