"""`c10kplan verify`: prove the plan on this host with the bundled server and the storm.

    options.py  VerifyOptions
    run.py      plan -> serve -> storm -> measure -> compare -> verdict
    server.py   `c10kplan serve` as a child process group
    measure.py  host samples through ProcFS (meminfo, sockstat, RSS, fds)
    compare.py  measured vs planned rows, and the verdict (pure)
    netns.py    --netns: the same run inside `unshare -n`
"""

from c10kplan.verify.options import VerifyOptions

__all__ = ["VerifyOptions", "run_verify"]


def run_verify(*args, **kwargs):  # lazy: keeps `import c10kplan.verify` light
    from c10kplan.verify.run import run_verify as _run

    return _run(*args, **kwargs)
