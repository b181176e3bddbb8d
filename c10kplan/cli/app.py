"""The typer application and `main`, the one place that maps errors to exit codes.

Each command module under `c10kplan.cli` exposes `register(app)`; commands stay thin and hand
off to one function in the library. Heavy imports (pydantic models, sockets machinery) happen
inside the command functions so that `c10kplan check` starts fast.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from c10kplan.errors import C10kError, ExitStatus

app = typer.Typer(
    name="c10kplan",
    help="Can this host hold N concurrent TCP connections, and if not, what must change?",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_state = {"traceback": False}


@app.callback()
def _root(
    traceback: Annotated[
        bool, typer.Option("--traceback", help="Show the full stack on errors.")
    ] = False,
) -> None:
    """check -> apply -> verify: plan, tune and prove a host for C10K .. C1M."""
    _state["traceback"] = traceback


def _register_commands() -> None:
    from c10kplan.cli import bench, check, merge, profiles, serve, storm

    for module in (check, profiles, serve, storm, merge, bench):
        module.register(app)


_register_commands()


def _one_line(exc: BaseException) -> str:
    """Render an exception as the one line the user sees."""
    from c10kplan.cli.render import format_validation_error

    text = format_validation_error(exc)
    if text is None:
        text = str(exc) or exc.__class__.__name__
    if isinstance(exc, PermissionError):
        text = f"permission denied: {text}"
    return " ".join(text.split())


def _exit_status(exc: BaseException) -> ExitStatus | None:
    """The documented exit code of an error, or None for a bug (shown with its traceback)."""
    if isinstance(exc, C10kError):
        return exc.exit_status
    if isinstance(exc, PermissionError):
        return ExitStatus.ENVIRONMENT
    # pydantic's ValidationError (checked by name: pydantic is imported lazily) is bad input.
    if type(exc).__name__ == "ValidationError" and type(exc).__module__.startswith("pydantic"):
        return ExitStatus.BAD_INPUT
    return None


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, map every known error to its documented exit code."""
    if argv is not None:
        sys.argv = ["c10kplan", *argv]
    try:
        app()
    except KeyboardInterrupt:  # typer maps Ctrl-C inside a command to exit 130 itself
        print("c10kplan: interrupted", file=sys.stderr)
        sys.exit(int(ExitStatus.INTERRUPTED))
    except Exception as exc:
        status = _exit_status(exc)
        if status is None or _state["traceback"]:
            raise
        print(f"c10kplan: error: {_one_line(exc)}", file=sys.stderr)
        sys.exit(int(status))
