"""Wall time of `apply --dry-run` and of `apply` + `rollback` on a fake /proc tree.

Two views: the library call (what the work costs) and the CLI as a user runs it (adds Python
start-up and imports). Every run uses a fresh fake tree with every supported key, so nothing on
the host is touched. Load from other processes skews the numbers: the `uptime` line is printed.

Run:
    python scripts/bench_apply.py [--profile c1m] [--repeat 50] [--cli-repeat 5]

Sample output (2 cores shared with four other engineers' tests):
    uptime: 08:01:53 up 38 min,  0 user,  load average: 1.71, 2.87, 1.52
    profile c1m: 15 keys, 13 written with --persist (3 files), fake tree of 28 keys
    what                       runs    median ms    p90 ms    min ms
    -------------------------  ------  -----------  --------  --------
    library apply --dry-run    50      2.1          2.7       1.3
    library apply (+persist)   50      14.4         17.3      10.7
    library rollback           50      7.4          9.2       5.6
    cli apply --dry-run        5       857.5        1726.3    630.7
    cli apply --yes --persist  5       908.7        1919.4    595.5
    cli rollback               5       703.8        1946.2    608.7
The CLI rows are dominated by interpreter start-up and imports; the library rows are the work.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from c10kplan.host.procfs import ProcFS  # noqa: E402
from c10kplan.profiles.apply import apply_profile, rollback  # noqa: E402
from c10kplan.profiles.backup import StateStore  # noqa: E402
from c10kplan.profiles.merge import resolve  # noqa: E402
from tests.unit.test_profiles_apply import DEFAULTS, make_tree  # noqa: E402


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000.0


def row(what: str, samples: list[float]) -> tuple[str, str, str, str, str]:
    s = sorted(samples)
    p90 = statistics.quantiles(s, n=10, method="inclusive")[-1] if len(s) > 1 else s[0]
    return (what, str(len(s)), f"{statistics.median(s):.1f}", f"{p90:.1f}", f"{s[0]:.1f}")


def cli(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "c10kplan", *args], cwd=REPO,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"c10kplan {' '.join(args)} failed: {proc.stderr.strip()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="c1m")
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--cli-repeat", type=int, default=5)
    args = ap.parse_args()

    from tabulate import tabulate

    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    profile = resolve(args.profile)
    results: dict[str, list[float]] = {k: [] for k in (
        "library apply --dry-run", "library apply (+persist)", "library rollback",
        "cli apply --dry-run", "cli apply --yes --persist", "cli rollback")}
    written = files = 0
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            root = make_tree(Path(tmp) / "root")
            store = StateStore(Path(tmp) / "state")
            procfs = ProcFS(root)
            results["library apply --dry-run"].append(timed(
                lambda: apply_profile(profile, procfs=procfs, store=store, dry_run=True)))
            report = []
            results["library apply (+persist)"].append(timed(
                lambda: report.append(apply_profile(profile, procfs=procfs, store=store,
                                                    persist=True))))
            written, files = len(report[0].written), len(report[0].files)
            results["library rollback"].append(timed(lambda: rollback(store)))
    for _ in range(args.cli_repeat):
        with tempfile.TemporaryDirectory() as tmp:
            root = str(make_tree(Path(tmp) / "root"))
            state = str(Path(tmp) / "state")
            common = ["--profile", args.profile, "--root", root, "--state-dir", state]
            results["cli apply --dry-run"].append(timed(lambda: cli("apply", "--dry-run", *common)))
            results["cli apply --yes --persist"].append(timed(
                lambda: cli("apply", "--yes", "--persist", *common)))
            results["cli rollback"].append(timed(lambda: cli("rollback", "--state-dir", state)))
    print(f"profile {profile.name}: {len(profile.sysctl)} keys, {written} written with --persist "
          f"({files} files), fake tree of {len(DEFAULTS)} keys")
    print(tabulate([row(k, v) for k, v in results.items() if v],
                   headers=["what", "runs", "median ms", "p90 ms", "min ms"],
                   disable_numparse=True))


if __name__ == "__main__":
    main()
