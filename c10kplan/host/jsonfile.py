"""Load a JSON file written by this tool (a snapshot, a calibration) into its pydantic model,
turning every problem into one HostFactsError line (exit 2). The file is read with the one
bounded read (c10kplan/boundedread.py): a regular file of at most `limit` bytes, UTF-8."""

from __future__ import annotations

import json
import os
from typing import TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def load_model_file(model: type[M], path: str | os.PathLike[str], option: str, limit: int) -> M:
    """`model.model_validate_json` of the file at `path`; `option` names the flag in errors."""
    from pydantic import ValidationError

    from c10kplan.boundedread import read_text
    from c10kplan.errors import HostFactsError

    where = f"{option} {os.fspath(path)}"
    try:
        text = read_text(path, limit)
    except OSError as exc:
        raise HostFactsError(f"{where}: {exc.strerror or exc}") from None
    try:
        # A file written by `snapshot` (render.emit_json) carries schema_version; the model does
        # not (it is the document's, not the facts').
        doc = json.loads(text)
        if isinstance(doc, dict):
            doc.pop("schema_version", None)
        return model.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ())) or "document"
        raise HostFactsError(
            f"{where}: not a valid {model.__name__}: {loc}: {first.get('msg', 'invalid')}"
        ) from None
    except RecursionError:  # json recurses once per nesting level
        raise HostFactsError(f"{where}: not JSON this tool writes: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, or an integer past the 4,300-digit int-str limit
        raise HostFactsError(f"{where}: not JSON: {str(exc).split(';')[0]}") from None
