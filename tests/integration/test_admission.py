"""The server-wide --max-connections total holds exactly across forked workers."""

from __future__ import annotations

import os

from c10kplan.reactor.admission import SharedActive


def test_racing_workers_never_admit_past_the_cap():
    workers, cap, tries = 4, 1_000, 5_000
    shared = SharedActive(workers)
    pids = []
    for slot in range(workers):
        pid = os.fork()
        if pid == 0:  # a worker: admit as fast as it can, publishing each admitted one
            own = 0
            for _ in range(tries):
                if shared.admit(slot, own, cap):
                    own += 1
                    shared.publish(slot, own)
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    assert shared.total() == cap


def test_a_refused_admission_changes_nothing_and_publish_frees():
    shared = SharedActive(2)
    assert shared.admit(0, 0, 1) and shared.total() == 1
    assert not shared.admit(1, 0, 1) and shared.total() == 1
    shared.publish(0, 0)  # the connection closed
    assert shared.admit(1, 0, 1) and shared.total() == 1
