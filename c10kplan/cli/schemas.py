"""JSON Schemas of the `--json` documents, generated from the pydantic models that print them.

The checked-in copies live in docs/schema/<name>.schema.json (scripts/gen_schema.py writes
them; tests/unit/test_json_schema.py fails when one is stale). Every document carries
`schema_version` (added by render.emit_json, declared here): it goes up when a field is
renamed, removed or changes meaning; adding a field does not change it.
"""

from __future__ import annotations

import importlib
from typing import Any

from c10kplan.cli.render import SCHEMA_VERSION

# name -> (the command that prints it, "module:Model")
DOCUMENTS: dict[str, tuple[str, str]] = {
    "check": ("c10kplan check --json", "c10kplan.planner.report:CheckReport"),
    "plan": ("c10kplan plan --connections N --json", "c10kplan.planner.report:PlanReport"),
    "capacity": ("c10kplan plan --json (no --connections)", "c10kplan.planner.report:CapacityReport"),
    "snapshot": ("c10kplan snapshot", "c10kplan.host.inspect:HostFacts"),
    "apply": ("c10kplan apply --json", "c10kplan.profiles.apply:ApplyReport"),
    "rollback": ("c10kplan rollback --json", "c10kplan.profiles.apply:RollbackReport"),
    "profiles-list": ("c10kplan profiles list --json", "c10kplan.profiles.listing:ProfileListing"),
    "profiles-show": ("c10kplan profiles show NAME --json", "c10kplan.profiles.model:Profile"),
    "storm": ("c10kplan storm --json", "c10kplan.storm.result:StormResult"),
    "verify": ("c10kplan verify --json", "c10kplan.verify.result:VerifyResult"),
    "verify-refusal": ("c10kplan verify --json, when the plan refuses", "c10kplan.verify.refusal:VerifyRefusal"),
    "verify-hosts": ("c10kplan verify --netns --client-hosts K --json", "c10kplan.verify.multihost:MultiHostResult"),
    "verify-storm-results": ("c10kplan verify --storm-results DIR --target HOST:PORT --json",
                             "c10kplan.verify.storm_results:StormResultsReport"),
    "merge": ("c10kplan merge RESULT.json... --json", "c10kplan.storm.merge:FleetResult"),
    "bench-backends": ("c10kplan bench backends --json", "c10kplan.bench.backends:BackendsBench"),
    "bench-trigger": ("c10kplan bench trigger --json", "c10kplan.bench.trigger:TriggerReport"),
}


def model_of(name: str) -> type:
    module, _, cls = DOCUMENTS[name][1].partition(":")
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]


def document_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one document, as its command prints it."""
    command, _ = DOCUMENTS[name]
    model = model_of(name)
    schema = model.model_json_schema(mode="serialization")  # type: ignore[attr-defined]
    props = {"schema_version": {"const": SCHEMA_VERSION, "title": "Schema Version",
                                "description": "Version of this document's schema."},
             **schema.get("properties", {})}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:c10kplan:schema:{name}:{SCHEMA_VERSION}",
        "description": f"The document `{command}` prints. {schema.pop('description', '')}".strip(),
        **{k: v for k, v in schema.items() if k not in ("properties", "required")},
        "properties": props,
        "required": ["schema_version", *schema.get("required", [])],
    }


def render_schema(name: str) -> str:
    """The checked-in text of one schema file."""
    import json

    return json.dumps(document_schema(name), indent=2, ensure_ascii=False) + "\n"
