"""Commands `apply`, `rollback`, `export` and the `profiles` group (list, show).

Thin: each command parses options and hands off to one function in `c10kplan.profiles`;
`c10kplan.cli.render` prints. Exit codes: 0 done, 1 declined at the prompt, 2 bad profile /
key / value / usage (nothing changed), 3 a write failed (everything restored).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperCommand

from c10kplan.profiles.formats import ExportFormat
from c10kplan.profiles.locate import complete_profile

profiles_app = typer.Typer(help="List shipped profiles and show a merged profile.",
                           no_args_is_help=True)

ProfileOpt = Annotated[str, typer.Option("--profile", "-p", autocompletion=complete_profile,
                                         help="Shipped profile name, or a path to a .toml file.")]
RootOpt = Annotated[Optional[Path], typer.Option(
    "--root", help="Tree holding proc/sys and etc/ (default /, or $C10KPLAN_ROOT).")]
StateOpt = Annotated[Optional[Path], typer.Option(
    "--state-dir", help="Where the backup lives (default ROOT/var/lib/c10kplan, or "
                        "$C10KPLAN_STATE_DIR).")]
KeysOpt = Annotated[Optional[str], typer.Option(
    "--keys", help="Only keys matching these comma-separated globs ('fs.*,net.core.*'); "
                   "'netns' = exactly the per-network-namespace keys, 'host' = the host-wide ones.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


def _short(path: str) -> str:
    return Path(path).name


def _render_apply(report, as_json: bool) -> None:  # noqa: ANN001 (ApplyReport, imported lazily)
    from c10kplan.cli import render

    if as_json:
        render.emit_json(report)
        return
    if report.recovered:
        render.note(f"note: {report.recovered}")
    rows = []
    for c in report.changes:
        new = c.new if c.action == "change" else c.wanted
        note = c.reason or (f"profile floor {c.wanted}" if c.action == "kept-higher" else "")
        rows.append((c.key, c.current if c.current is not None else "-", new, c.action, note))
    title = (f"profile {report.profile} (root {report.root})"
             + (": dry run, nothing changed" if report.dry_run else ""))
    render.table(rows, ("key", "current", "new", "action", "note"), title=title)
    counts: dict[str, int] = {}
    for c in report.changes:
        counts[c.action] = counts.get(c.action, 0) + 1
    summary = ", ".join(f"{n} {a}" for a, n in counts.items())
    render.line()
    if report.dry_run:
        render.line(f"would change {counts.get('change', 0)} key(s) ({summary})")
        for f in report.files:
            render.line(f"would write {Path(report.root) / f}")
    else:
        render.line(f"changed {len(report.written)} key(s) ({summary}); "
                    f"backup in {report.state_dir}, undo with `c10kplan rollback "
                    f"--state-dir {report.state_dir}`")
        for f in report.files:
            render.line(f"wrote {Path(report.root) / f}")
    for e in report.effects:
        render.line(f"- {e}")


def apply(
    profile: ProfileOpt,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the diff, change nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    keys: KeysOpt = None,
    persist: Annotated[bool, typer.Option(
        "--persist", help="Also write sysctl.d, limits.d and a systemd drop-in under --root.")] = False,
    root: RootOpt = None,
    state_dir: StateOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Apply a profile's sysctls (backup first, verify each write, all-or-nothing)."""
    from c10kplan.errors import BadInput
    from c10kplan.host.procfs import ProcFS
    from c10kplan.profiles.apply import apply_profile, parse_patterns
    from c10kplan.profiles.backup import StateStore
    from c10kplan.profiles.merge import resolve

    prof = resolve(profile)
    patterns = parse_patterns(keys)
    procfs = ProcFS(root)
    store = StateStore(state_dir, root=procfs.root)
    args = {"procfs": procfs, "store": store, "patterns": patterns, "persist": persist}
    if not dry_run and not yes:
        if not sys.stdin.isatty():
            raise BadInput("refusing to apply without --yes: stdin is not a terminal "
                           "(use --dry-run to see the diff); nothing was changed")
        _render_apply(apply_profile(prof, dry_run=True, **args), as_json=False)
        if not typer.confirm("Apply these changes?", default=False):
            from c10kplan.cli import render

            render.note("not applied; nothing was changed")
            raise typer.Exit(1)
    _render_apply(apply_profile(prof, dry_run=dry_run, **args), as_json)


def rollback(root: RootOpt = None, state_dir: StateOpt = None, as_json: JsonOpt = False) -> None:
    """Restore the values and files the last apply(s) replaced. Safe to run twice."""
    from c10kplan.cli import render
    from c10kplan.profiles.apply import rollback as do_rollback
    from c10kplan.host.procfs import ProcFS
    from c10kplan.profiles.backup import StateStore

    report = do_rollback(StateStore(state_dir, root=ProcFS(root).root), root=root)
    if as_json:
        render.emit_json(report)
        return
    render.line(report.message)
    for f in report.files:
        render.line(f"restored {Path(report.root or '/') / f}")


def export(
    ctx: typer.Context,
    fmt: Annotated[ExportFormat, typer.Option(
        "--format", "-f", help="The file to write; ansible-storm is a fleet storm playbook (no profile; "
                               "--connections N --target HOST:PORT [storm options]: `export --format "
                               "ansible-storm --help` lists them; docs/fleet.md).")],
    profile: Annotated[Optional[str], typer.Option(
        "--profile", "-p", autocompletion=complete_profile,
        help="Shipped profile name, or a path to a .toml file.")] = None,
    keys: KeysOpt = None,
    unit: Annotated[Optional[str], typer.Option(
        "--unit", help="systemd only: a [Service] LimitNOFILE= drop-in for this service "
                       "(NAME.service) instead of the [Manager] DefaultLimitNOFILE= one.")] = None,
    portable: Annotated[bool, typer.Option(
        "--portable", help="sysctl.d / tuned: do not read this host; raise-only keys are "
                           "written as the profile's floor.")] = False,
    root: RootOpt = None,
) -> None:
    """Print the profile as a sysctl.d / limits.d / systemd / tuned / Ansible file.

    sysctl.d and tuned read this host (--root) so a raise-only key keeps a higher host value,
    as `apply --persist` does; use --portable for a file meant for other hosts."""
    from c10kplan.errors import BadInput

    if fmt.value == "ansible-storm":  # its own options (cli/export_storm.py), no profile
        from c10kplan.cli.export_storm import export_storm

        return export_storm(ctx.args, profile=profile, keys=keys)
    if profile is None or ctx.args:
        raise BadInput(f"unexpected arguments: {' '.join(ctx.args)}" if ctx.args else "--profile is required")
    from c10kplan.cli import render
    from c10kplan.host.procfs import ProcFS
    from c10kplan.profiles.apply import parse_patterns
    from c10kplan.profiles.export import export_profile
    from c10kplan.profiles.merge import resolve

    procfs = None if portable else ProcFS(root)
    text = export_profile(resolve(profile), fmt.value, parse_patterns(keys), procfs=procfs, unit=unit)
    render.document(text.rstrip("\n"))


@profiles_app.command("list")
def list_profiles(as_json: JsonOpt = False) -> None:
    """The shipped profiles: what each is sized for and what it extends."""
    from c10kplan.cli import render
    from c10kplan.profiles.merge import shipped_profiles

    profs = shipped_profiles()
    if as_json:
        from c10kplan.profiles.listing import ProfileListing

        render.emit_json(ProfileListing.of(profs))
        return
    rows = [(p.name, " -> ".join(p.chain[:-1]) or "-",
             f"{p.target.connections:,}" if p.target else "-",
             ",".join(p.target.roles) if p.target else "-", p.summary) for p in profs]
    render.table(rows, ("name", "extends", "connections", "roles", "summary"))


@profiles_app.command("show")
def show_profile(
    name: Annotated[str, typer.Argument(help="Shipped profile name or .toml path.")],
    as_json: JsonOpt = False,
) -> None:
    """The merged profile: every value and the file it came from."""
    from c10kplan.cli import render
    from c10kplan.profiles.merge import resolve
    from c10kplan.profiles.schema import SUPPORTED

    p = resolve(name)
    if as_json:
        render.emit_json(p)
        return
    render.line(f"{p.name}: {p.summary}")
    render.line(f"chain: {' -> '.join(p.chain)}   file: {p.path}")
    if p.target:
        render.line(f"sized for: {p.target.connections:,} connections ({', '.join(p.target.roles)})")
    rows = []
    for key, s in p.sysctl.items():
        spec = SUPPORTED.get(key)
        rows.append((key, s.display, spec.unit if spec else "(unknown key)",
                     spec.scope if spec else "?", _short(s.source)))
    render.table(rows, ("key", "value", "unit", "scope", "from"))
    lim = p.limits
    if lim.nofile_soft is not None or lim.nofile_hard is not None:
        render.line(f"nofile: soft {lim.nofile_soft} hard {lim.nofile_hard} "
                    f"(from {_short(lim.source or p.path)}; persisted by apply --persist)")
    render.line("'>' = raise only: never lowers a value already higher on the host")


class _ExportCommand(TyperCommand):
    """`export --format ansible-storm --help` lists the playbook's options (cli/export_storm.py)."""

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        if any("ansible-storm" in a for a in args):  # only then load the playbook's command
            from c10kplan.cli.export_storm import show_help_if_asked

            show_help_if_asked(ctx, args)
        return super().parse_args(ctx, args)


def register(app: typer.Typer) -> None:
    """Add apply, rollback, export and the profiles group to the app."""
    app.command("apply")(apply)
    app.command("rollback")(rollback)
    app.command("export", cls=_ExportCommand,
                context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(export)
    app.add_typer(profiles_app, name="profiles")
