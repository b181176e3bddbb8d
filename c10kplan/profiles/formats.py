"""The export formats, in a module light enough for the CLI to import at start-up (choices and
shell completion of `export --format`) without pulling in pydantic."""

from __future__ import annotations

from enum import Enum

FORMATS: tuple[str, ...] = ("sysctl.d", "limits.d", "systemd", "tuned", "ansible")
# Not a profile export: a fleet storm playbook (c10kplan/fleet/ansible_storm.py, docs/fleet.md).
FLEET_FORMATS: tuple[str, ...] = ("ansible-storm",)

# typer turns an Enum into a click Choice: the usage error for a bad value, the --help list and
# shell completion all come from it.
ExportFormat = Enum("ExportFormat", {f: f for f in FORMATS + FLEET_FORMATS}, type=str)  # type: ignore[misc]
