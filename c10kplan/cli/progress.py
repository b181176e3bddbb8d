"""The live display of `storm` and `verify`: one line on a TTY (stderr), updated from the
storm's progress events, and the run around it (Ctrl-C / SIGTERM -> one line, exit 130 / 143)."""

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
        est, failed, recv = self._counts()
        t_prev, est_prev, recv_prev = self._prev
        dt = max(1e-6, now - t_prev)
        self._prev = (now, est, recv)
        render.progress(
            f"connections {est}/{self.target}  connect/s {(est - est_prev) / dt:,.0f}  "
            f"messages/s {(recv - recv_prev) / dt:,.0f}  errors {failed}   "
        )

    def _counts(self) -> tuple[int, int, int]:
        """(established, failed, replies received) over every process's last report."""
        return tuple(sum(e.get(k, 0) for e in self.latest.values())  # type: ignore[return-value]
                     for k in ("established", "failed", "received"))

    def interrupted(self, what: str, signal_name: str) -> dict:
        """The --json document of a run stopped by a signal: what the last progress reports
        counted (established, failed, replies), no verdict on the target."""
        est, failed, recv = self._counts()
        elapsed = round(time.monotonic() - self.t0, 3)
        return {"verdict": "INTERRUPTED", "signal": signal_name, "connections": self.target,
                "elapsed_seconds": elapsed,
                "so_far": {"established": est, "failed": failed, "messages_received": recv},
                "problems": [f"{what} stopped by {signal_name} after {elapsed:.1f} s: nothing was judged"]}

    def finish(self) -> None:
        if self.enabled and self._last_draw:
            render.progress_end()
            self._last_draw = 0.0


def run_shown(run, target: int, json_out: bool, progress: bool | None, printer, what: str, stopped: str):
    """Run with the live display (on stderr: by default on a TTY without --json; --progress
    asks for it always), then print the result once.
    On Ctrl-C or SIGTERM: one line, `WHAT interrupted; STOPPED` (or `terminated`); with --json
    also one document, verdict INTERRUPTED with what the progress reports had counted; then exit
    130 (Ctrl-C, via typer) or 143 (SIGTERM)."""

    import signal

    import typer

    from c10kplan.errors import ExitStatus, Terminated

    def _terminate(signum, frame):  # SIGTERM stops everything the same way Ctrl-C does
        raise Terminated

    old = signal.signal(signal.SIGTERM, _terminate)
    show = progress if progress is not None else sys.stderr.isatty() and not json_out
    display = Progress(target, show)
    try:
        result = run(display)
    except KeyboardInterrupt as exc:
        display.finish()
        term = isinstance(exc, Terminated)
        how = "terminated" if term else "interrupted"
        render.note(f"c10kplan: {what} {how}; {stopped}")
        if json_out:  # --json prints one document, whatever happens
            render.emit_json(display.interrupted(what, "SIGTERM" if term else "SIGINT"))
        if term:  # (typer turns a KeyboardInterrupt into exit 130 itself)
            raise typer.Exit(int(ExitStatus.TERMINATED)) from None
        raise
    finally:
        display.finish()
        signal.signal(signal.SIGTERM, old)
    if json_out:
        render.emit_json(result)
    else:
        printer(result)
    return result
