"""The typer application and `main`, the one place that maps errors to exit codes.

Each command module under `c10kplan.cli` exposes `register(app)`; commands stay thin and hand
off to one function in the library. Heavy imports (pydantic models, sockets machinery) happen
inside the command functions so that `c10kplan check` starts fast.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from c10kplan.errors import C10kError, ExitStatus, Terminated

PROG = "c10kplan"

app = typer.Typer(
    name=PROG,
    help="Can this host hold N concurrent TCP connections, and if not, what must change?",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # `c10kplan --install-completion` / `--show-completion`; completing --profile and --format
    # comes from the options themselves (cli/profiles.py).
    add_completion=True,
    # click copies a context's help_option_names into every sub-context: -h works everywhere.
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"traceback": False}


def _version() -> str:
    """The installed distribution's version, or the package's own for a bare source tree."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PROG)
    except PackageNotFoundError:
        from c10kplan import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        print(f"{PROG} {_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    traceback: Annotated[
        bool, typer.Option("--traceback", help="Show the full stack on errors.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True,
                           help="Print the version and exit.")
    ] = False,
) -> None:
    """check -> apply -> verify: plan, tune and prove a host for C10K .. C1M."""
    _state["traceback"] = traceback


def _register_commands() -> None:
    from c10kplan.cli import bench, check, merge, profiles, serve, storm, verify

    for module in (check, profiles, serve, storm, verify, merge, bench):
        module.register(app)


_register_commands()


def _tree(command: object):  # noqa: ANN202 (click commands)
    """A click command and every subcommand under it (none for None)."""
    if command is None:
        return
    yield command
    for sub in getattr(command, "commands", {}).values():
        yield from _tree(sub)


def option_names() -> dict[str, str]:
    """Every command's options as {parameter name: its long flag} ("message_rate" ->
    "--message-rate"), read from the click tree typer builds: what validation errors name
    instead of a model's field. A name two commands spell differently (--backend, --backends)
    keeps the spelling that is the name itself."""
    found: dict[str, set[str]] = {}
    root = typer.main.get_command(app) if isinstance(app, typer.Typer) else None
    for command in _tree(root):
        for param in getattr(command, "params", ()):
            flags = [o for o in getattr(param, "opts", ()) if o.startswith("--")]
            if flags and param.name:
                found.setdefault(param.name, set()).add(max(flags, key=len))
    out = {}
    for name, flags in found.items():
        plain = "--" + name.replace("_", "-")
        if len(flags) == 1 or plain in flags:
            out[name] = plain if plain in flags else flags.pop()
    return out


def _one_line(exc: BaseException) -> str:
    """Render an exception as the one line the user sees."""
    from c10kplan.cli.render import format_validation_error

    text = format_validation_error(exc, option_names() if type(exc).__name__ == "ValidationError" else None)
    if text is None:
        text = str(exc) or exc.__class__.__name__
    if isinstance(exc, PermissionError):
        text = f"permission denied: {text}"
    from c10kplan.boundedread import printable  # text from a file may hold terminal escapes

    return printable(" ".join(text.split()))


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


def _click_class(name: str) -> type[BaseException]:
    """click's exception class `name` (UsageError, Abort), whichever click typer runs on (its
    own vendored copy in typer >= 0.2x, the click package before): found from typer's
    re-exported BadParameter and Abort."""
    for cls in (*typer.BadParameter.__mro__, *typer.Abort.__mro__):
        if cls.__name__ == name:
            return cls
    raise LookupError(name)


def _command_path(args: list[str]) -> str:
    """`c10kplan bench trigger` from the words of argv that name commands (a parse error of an
    option, `check --connections` with no value, comes without click's context)."""
    path, command = [PROG], typer.main.get_command(app) if isinstance(app, typer.Typer) else None
    for word in args:
        subs = getattr(command, "commands", {})
        if word.startswith("-") and not path[1:]:
            continue  # a root option before the command (--traceback)
        if word not in subs:
            break
        path.append(word)
        command = subs[word]
    return " ".join(path)


def usage_line(exc: BaseException) -> str:
    """A click usage error as the one line users see: `c10kplan: error: CMD: MESSAGE (...)`."""
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else _command_path(sys.argv[1:])
    where = path[len(PROG):].strip()
    message = " ".join(exc.format_message().split())  # type: ignore[attr-defined]
    return (f"{PROG}: error: {where + ': ' if where else ''}{message} "
            f"(see '{path} -h')")


def _command():  # noqa: ANN202 (typer's click command, or a test's stand-in)
    """The click command tree typer builds from `app`, with the help of on/off flags showing
    no `<bool>` type: a flag takes no value."""
    if not isinstance(app, typer.Typer):  # (a test may stand a function in for the app)
        return app

    def no_type(param: object) -> object:
        if getattr(param, "is_flag", False) and param.metavar is None:  # type: ignore[attr-defined]
            param.metavar = ""  # type: ignore[attr-defined]  # rich help shows it instead of the type
        return param

    root = typer.main.get_command(app)
    for command in _tree(root):
        for param in command.params:
            no_type(param)
        # -h / --help is made per context, not kept in params.
        made = command.get_help_option
        command.get_help_option = lambda ctx, made=made: no_type(made(ctx))  # type: ignore[method-assign]
    return root


def _run_app() -> int:
    """Run click without its standalone handling, so usage errors come back to us instead of
    being drawn in a box; returns the exit code."""
    usage, abort = _click_class("UsageError"), _click_class("Abort")
    try:
        code = _command()(prog_name=PROG, standalone_mode=False)
    except usage as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `c10kplan`, `c10kplan profiles`
            # The help, as click shows it (typer's rich help prints itself and returns "").
            text = exc.ctx.get_help()  # type: ignore[attr-defined]
            if text:
                print(text)
        else:
            print(usage_line(exc), file=sys.stderr)
        return int(ExitStatus.BAD_INPUT)
    except abort:
        print(f"{PROG}: aborted", file=sys.stderr)
        return 1
    # standalone_mode=False returns a command's return value, or the code of typer.Exit(N).
    return code if isinstance(code, int) else 0


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, map every known error to its documented exit code."""
    if argv is not None:
        sys.argv = [PROG, *argv]
    try:
        sys.exit(_run_app())
    except KeyboardInterrupt as exc:  # typer maps Ctrl-C inside a command to exit 130 itself
        term = isinstance(exc, Terminated)  # SIGTERM (cli/progress.py): 143
        print(f"c10kplan: {'terminated' if term else 'interrupted'}", file=sys.stderr)
        sys.exit(int(ExitStatus.TERMINATED if term else ExitStatus.INTERRUPTED))
    except Exception as exc:
        status = _exit_status(exc)
        if status is None or _state["traceback"]:
            raise
        print(f"c10kplan: error: {_one_line(exc)}", file=sys.stderr)
        sys.exit(int(status))
