"""`python -m c10kplan.netns.reaper PREFIX`: say `ready` on stdout, wait until stdin (a pipe
only the owner of the topology holds open) reaches EOF, then delete every namespace PREFIX-*.

EOF comes when the owner closes the pipe or dies in any way, SIGKILL included: the kernel
closes a dead process's fds. Started in its own session without PDEATHSIG, so it outlives the
owner. SIGTERM / SIGHUP tear down too, so stopping the reaper cannot leak the namespaces."""

from __future__ import annotations

import os
import signal
import sys

from c10kplan.netns.ip import delete_prefixed  # imported before `ready`: teardown cannot fail to import


def _stop(signum, frame):  # noqa: ANN001
    raise SystemExit(0)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].startswith("c10k-"):
        print("usage: python -m c10kplan.netns.reaper c10k-PID-RAND", file=sys.stderr)
        return 2
    prefix = argv[0]
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print("ready", flush=True)
    try:
        while os.read(0, 4096):  # the owner never writes: only EOF (or an error) ends this
            pass
    except (OSError, SystemExit):
        pass
    finally:
        for sig in (signal.SIGTERM, signal.SIGHUP):  # a second signal must not cut the teardown
            signal.signal(sig, signal.SIG_IGN)
        delete_prefixed(prefix)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
