"""Write the JSON Schema of every `--json` document to docs/schema/<name>.schema.json.

    python scripts/gen_schema.py           # (re)write docs/schema/
    python scripts/gen_schema.py --check   # exit 1 and name the stale files, change nothing

Sample output:

    wrote docs/schema/check.schema.json
    ...
    wrote docs/schema/bench-trigger.schema.json
    16 schemas (schema_version 1)

The schemas come from the pydantic models that print the documents (c10kplan/cli/schemas.py);
tests/unit/test_json_schema.py fails when a checked-in file differs from what this writes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from c10kplan.cli.schemas import DOCUMENTS, render_schema  # noqa: E402
from c10kplan.cli.render import SCHEMA_VERSION  # noqa: E402

OUT = REPO / "docs" / "schema"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare only; exit 1 when stale")
    args = ap.parse_args()
    stale = []
    for name in DOCUMENTS:
        path = OUT / f"{name}.schema.json"
        text = render_schema(name)
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(REPO)}")
    if stale:
        print("stale (run python scripts/gen_schema.py): "
              + ", ".join(str(p.relative_to(REPO)) for p in stale))
        return 1
    print(f"{len(DOCUMENTS)} schemas (schema_version {SCHEMA_VERSION})"
          + (" are current" if args.check else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
