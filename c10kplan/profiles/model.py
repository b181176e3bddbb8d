"""Frozen records of a merged profile; they cross into apply, export and `profiles show --json`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from c10kplan.errors import ProfileError
from c10kplan.numeric import MAX_CONNECTIONS, Int

# Kernel default of fs.nr_open (fs/file.c: sysctl_nr_open = 1024 * 1024). RLIMIT_NOFILE can
# never be raised above it, so a profile that does not set fs.nr_open is checked against this.
DEFAULT_NR_OPEN = 1048576
ROLES = ("server", "client")


class Setting(BaseModel):
    """One sysctl of a profile: the value to write and the file it came from."""

    model_config = ConfigDict(frozen=True)

    key: str
    text: str  # the value as written to /proc/sys (space-separated), without the '>' prefix
    ints: tuple[int, ...] | None  # None only for allow_unknown keys with non-integer values
    raise_only: bool = False  # '>' form: never lower a value already higher on the host
    source: str
    known: bool = True  # in the supported-key table

    @property
    def display(self) -> str:
        return (">" if self.raise_only else "") + self.text


class Target(BaseModel):
    """What a profile is sized for, so `check` can suggest one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connections: Int = Field(ge=1, le=MAX_CONNECTIONS)
    roles: tuple[str, ...] = ROLES


class Limits(BaseModel):
    """RLIMIT_NOFILE for the service user: persisted to limits.d and systemd, never live."""

    model_config = ConfigDict(frozen=True)

    nofile_soft: int | None = Field(default=None, ge=1, le=2147483584)
    nofile_hard: int | None = Field(default=None, ge=1, le=2147483584)
    source: str | None = None


class Profile(BaseModel):
    """A merged, validated profile."""

    model_config = ConfigDict(frozen=True)

    name: str
    summary: str
    path: str
    chain: tuple[str, ...]  # names from the root ancestor to this profile
    target: Target | None = None
    sysctl: dict[str, Setting]
    limits: Limits = Limits()

    @model_validator(mode="after")
    def _cross_checks(self) -> Profile:
        soft, hard = self.limits.nofile_soft, self.limits.nofile_hard
        src = self.limits.source or self.path
        if soft is not None and hard is not None and soft > hard:
            raise ProfileError(f"{src}: limits.nofile_soft: soft limit {soft} exceeds hard limit {hard}")
        if hard is not None:
            nr = self.sysctl.get("fs.nr_open")
            nr_open = nr.ints[0] if nr is not None and nr.ints else DEFAULT_NR_OPEN
            where = nr.source if nr is not None else "kernel default"
            if hard > nr_open:
                raise ProfileError(
                    f"{src}: limits.nofile_hard: {hard} exceeds fs.nr_open {nr_open} ({where}); "
                    "the kernel refuses RLIMIT_NOFILE above fs.nr_open, raise fs.nr_open too")
        return self

    def selected(self, patterns: tuple[str, ...]) -> list[Setting]:
        """Settings whose key matches any of the globs (all when `patterns` is empty)."""
        from fnmatch import fnmatchcase

        return [s for k, s in self.sysctl.items()
                if not patterns or any(fnmatchcase(k, p) for p in patterns)]
