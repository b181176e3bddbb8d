"""How fast the process cap refuses a request, and that nothing was forked first.

Each command runs in a fresh pid namespace (`unshare --pid --fork --mount-proc`, root): the shell
is pid 1 and the command pid 2, so /proc/sys/kernel/ns_last_pid, read by a shell builtin after it
exited, is still 2 only if the command forked nothing. Wall time is the command's own (from the
shell, `$EPOCHREALTIME`), best of --repeat.

    python scripts/bench_refusals.py --repeat 5

Sample output (2 vCPUs, 24 GiB, shared with other jobs: load average 5-6):

    command                                                exit  forked  best s  median s
    serve --workers auto --max-connections 1000000000         2       0   0.198     0.202
    storm 127.0.0.1:9 --processes 100000 -n 100000            2       0   0.177     0.180
    storm 127.0.0.1:9 -n 2000000000                           2       0   0.204     0.212
    verify --workers 2000 -n 1000                             2       0   0.196     0.208
    verify --storm-processes 100000 -n 1000000                2       0   0.187     0.214
    c10kplan: error: verify needs 100,002 processes (server workers from the plan (at least 1), 100,000 storm processes and serve); this host allows at most 128 (2 CPUs x 64: 128; ...)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

COMMANDS = [
    "serve --workers auto --max-connections 1000000000",
    "storm 127.0.0.1:9 --processes 100000 -n 100000",
    "storm 127.0.0.1:9 -n 2000000000",
    "verify --workers 2000 -n 1000",
    "verify --storm-processes 100000 -n 1000000",
]
# bash: $EPOCHREALTIME and `read` are builtins, so the shell forks only the command itself
SCRIPT = ('t0=$EPOCHREALTIME; "$@" 2>/tmp/.c10kplan-refusal; rc=$?; t1=$EPOCHREALTIME; '
          'read last </proc/sys/kernel/ns_last_pid; echo "$rc $last $t0 $t1"')


def run_once(command: str) -> tuple[int, int, float]:
    done = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "bash", "-c", SCRIPT, "bash",
                           sys.executable, "-m", "c10kplan", *command.split()],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    rc, last, t0, t1 = done.stdout.split()
    return int(rc), int(last) - 2, float(t1) - float(t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(f"{'command':<54} {'exit':>4} {'forked':>7} {'best s':>7} {'median s':>9}")
    for command in COMMANDS:
        runs = [run_once(command) for _ in range(args.repeat)]
        times = [t for _, _, t in runs]
        print(f"{command:<54} {runs[0][0]:>4} {max(f for _, f, _ in runs):>7} {min(times):>7.3f}"
              f" {statistics.median(times):>9.3f}")
    with open("/tmp/.c10kplan-refusal") as f:
        print(f.read().strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
