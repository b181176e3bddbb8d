"""docs/schema/*.schema.json are current (what scripts/gen_schema.py writes from the models), and
the documents the commands print validate against them, schema_version included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from c10kplan.cli import render
from c10kplan.cli.app import main
from c10kplan.cli.schemas import DOCUMENTS, document_schema, render_schema
from tests.unit.test_profiles_apply import make_tree

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schema"


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_checked_in_schema_is_current(name):
    path = SCHEMA_DIR / f"{name}.schema.json"
    assert path.is_file(), f"missing {path}: run python scripts/gen_schema.py"
    assert path.read_text() == render_schema(name), \
        f"{path} is stale: run python scripts/gen_schema.py"


def test_no_stray_schema_files():
    assert {p.name for p in SCHEMA_DIR.glob("*.schema.json")} == \
        {f"{n}.schema.json" for n in DOCUMENTS}


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_schema_requires_schema_version(name):
    schema = document_schema(name)
    assert schema["required"][0] == "schema_version"
    assert schema["properties"]["schema_version"]["const"] == render.SCHEMA_VERSION
    jsonschema = pytest.importorskip("jsonschema", reason="validates the schemas; a test extra")
    jsonschema.Draft202012Validator.check_schema(schema)


def test_emit_json_puts_schema_version_first_and_refuses_a_bare_list(capsys):
    render.emit_json({"a": 1})
    assert list(json.loads(capsys.readouterr().out)) == ["schema_version", "a"]
    with pytest.raises(TypeError):
        render.emit_json([1, 2])


def _doc(capsys, *argv: str) -> dict:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    assert info.value.code in (0, 1)  # check exits 1 when the host is not ready
    return json.loads(capsys.readouterr().out)


def test_printed_documents_validate(tmp_path, fixtures_dir, capsys):
    jsonschema = pytest.importorskip("jsonschema", reason="validates the documents; a test extra")
    live = str(fixtures_dir / "proc" / "live")
    root = make_tree(tmp_path / "root")
    state = str(tmp_path / "state")
    docs = {
        "check": _doc(capsys, "check", "-n", "100000", "--root", live, "--json"),
        "plan": _doc(capsys, "plan", "-n", "100000", "--role", "both", "--root", live, "--json"),
        "snapshot": _doc(capsys, "snapshot", "--root", live),
        "profiles-list": _doc(capsys, "profiles", "list", "--json"),
        "profiles-show": _doc(capsys, "profiles", "show", "c1m", "--json"),
        "apply": _doc(capsys, "apply", "-p", "c1m", "--yes", "--persist", "--root", str(root),
                      "--state-dir", state, "--json"),
        "rollback": _doc(capsys, "rollback", "--state-dir", state, "--json"),
    }
    for name, doc in docs.items():
        assert doc["schema_version"] == render.SCHEMA_VERSION
        jsonschema.validate(doc, document_schema(name))
    bad = dict(docs["profiles-show"], schema_version=render.SCHEMA_VERSION + 1)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, document_schema("profiles-show"))


def test_snapshot_with_schema_version_loads_as_host_facts(tmp_path, fixtures_dir, capsys):
    live = str(fixtures_dir / "proc" / "live")
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(_doc(capsys, "snapshot", "--root", live)))
    doc = _doc(capsys, "plan", "-n", "1000", "--host-facts", str(facts), "--json")
    assert doc["target"]["connections"] == 1000


def test_every_json_option_has_a_schema():
    """Each command that takes --json names its document in DOCUMENTS (docs/schema/)."""
    import typer

    from c10kplan.cli.app import app

    commands = [command for command, _ in DOCUMENTS.values()]
    missing = []

    def walk(cmd, path):
        if any("--json" in getattr(p, "opts", ()) for p in cmd.params):
            name = f"c10kplan {' '.join(path)}"
            if not any(c == name or c.startswith(name + " ") for c in commands):
                missing.append(" ".join(path))
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    assert missing == []


def test_merge_document_validates(tmp_path, capsys):
    """A real `merge --json` of two `storm --json` documents matches the merge schema (not the
    storm one: a fleet result has parts, a window and a merged storm)."""
    jsonschema = pytest.importorskip("jsonschema", reason="validates the documents; a test extra")
    from tests.unit.test_storm_merge import host_result

    files = []
    for i in (1, 2):
        path = tmp_path / f"host{i}.json"
        render.emit_json(host_result(i, 2, [100 * i, 200, 300]))
        path.write_text(capsys.readouterr().out)
        files.append(str(path))
    doc = _doc(capsys, "merge", *files, "--json")
    assert doc["hosts"] == 2 and len(doc["parts"]) == 2
    jsonschema.validate(doc, document_schema("merge"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, document_schema("storm"))
