"""The state directory: one backup of the values c10kplan replaced, written before any change.

Layout: `<state-dir>/backup.json`, mode 0600, replaced atomically. It holds
- `sysctl` / `files`: the values and files as they were BEFORE c10kplan first touched them
  (a second apply adds keys it did not hold yet, never overwrites an original), so rollback
  always returns the host to its pre-c10kplan state;
- `pending_*`: the values as they were before the apply in progress, and `complete = false`
  while it runs. A backup found with `complete = false` means an apply was interrupted; the
  next apply or rollback restores `pending_*` first.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from c10kplan.errors import EnvironmentProblem
from c10kplan.files import atomic_write

DEFAULT_STATE_DIR = Path("/var/lib/c10kplan")
STATE_DIR_ENV = "C10KPLAN_STATE_DIR"
STATE_FILE = "backup.json"


def default_state_dir() -> Path:
    """$C10KPLAN_STATE_DIR, else /var/lib/c10kplan."""
    return Path(os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR)


class Backup(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int = 1
    root: str
    applied: tuple[str, ...] = ()  # profiles whose apply completed, oldest first
    pending_profile: str | None = None  # the apply in progress (None when complete)
    sysctl: dict[str, str] = {}  # key -> raw original text (as read from /proc/sys)
    files: dict[str, str | None] = {}  # path under root -> original text, None = did not exist
    pending_sysctl: dict[str, str] = {}
    pending_files: dict[str, str | None] = {}

    @property
    def complete(self) -> bool:
        return self.pending_profile is None


class StateStore:
    """Reads and writes `backup.json` in one state directory."""

    def __init__(self, state_dir: Path | str | None = None) -> None:
        self.dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self.file = self.dir / STATE_FILE

    def load(self) -> Backup | None:
        try:
            text = self.file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise EnvironmentProblem(f"{self.file}: cannot read the backup: "
                                     f"{exc.strerror or exc}") from None
        try:
            return Backup.model_validate(json.loads(text))
        except (ValueError, ValidationError):
            raise EnvironmentProblem(f"{self.file}: the backup is corrupt; inspect it and "
                                     "restore by hand, or remove it") from None

    def save(self, backup: Backup) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write(self.file, backup.model_dump_json(indent=2) + "\n", mode=0o600)
        except OSError as exc:
            raise EnvironmentProblem(f"{self.file}: cannot write the backup: "
                                     f"{exc.strerror or exc}; nothing was changed") from None

    def clear(self) -> None:
        try:
            os.unlink(self.file)
        except FileNotFoundError:
            pass
