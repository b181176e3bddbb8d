"""The live display of `storm` and `verify`: one line on a TTY (stderr), updated from the
storm's progress events, and the run around it (Ctrl-C / SIGTERM -> one line, exit 130)."""

from __future__ import annotations

import sys
import time

from c10kplan.cli import render


class Progress:
    """A one-line live display on a TTY (stderr): established/target, rate, messages/s, errors."""

    def __init__(self, target: int, enabled: bool) -> None:
        self.target = target
        self.enabled = enabled
        self.latest: dict[int, dict] = {}
        self.t0 = time.monotonic()
        self._last_draw = 0.0
        self._prev = (self.t0, 0, 0)

    def __call__(self, event: dict) -> None:
        if event.get("event") not in ("progress", "ramped"):
            return
        self.latest[event.get("index", 0)] = event
        now = time.monotonic()
        if not self.enabled or now - self._last_draw < 0.25:
            return
        self._last_draw = now
        est = sum(e.get("established", 0) for e in self.latest.values())
        failed = sum(e.get("failed", 0) for e in self.latest.values())
        recv = sum(e.get("received", 0) for e in self.latest.values())
        t_prev, est_prev, recv_prev = self._prev
        dt = max(1e-6, now - t_prev)
        self._prev = (now, est, recv)
        render.progress(
            f"connections {est}/{self.target}  connect/s {(est - est_prev) / dt:,.0f}  "
            f"messages/s {(recv - recv_prev) / dt:,.0f}  errors {failed}   "
        )

    def finish(self) -> None:
        if self.enabled and self._last_draw:
            render.progress_end()
            self._last_draw = 0.0


def run_shown(run, target: int, json_out: bool, progress: bool | None, printer, interrupted: str):
    """Run with the live display (on stderr: by default on a TTY without --json; --progress
    asks for it always), then print the result once.
    On Ctrl-C or SIGTERM: one line saying what was stopped, then exit 130 (via the app)."""

    import signal

    def _terminate(signum, frame):  # SIGTERM stops everything the same way Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    show = progress if progress is not None else sys.stderr.isatty() and not json_out
    display = Progress(target, show)
    try:
        result = run(display)
    except KeyboardInterrupt:
        display.finish()
        render.note("c10kplan: " + interrupted)
        raise
    finally:
        display.finish()
    if json_out:
        render.emit_json(result)
    else:
        printer(result)
    return result
