"""Tuned profiles: locate -> load -> merge -> validate, then apply / rollback / export.

Public entry points (heavy imports stay inside the functions so `c10kplan check` starts fast):
- `resolve(ref)`: the merged, validated Profile for a shipped name or a .toml path
- `suggest_profile(connections, role)`: the smallest shipped profile sized for the target
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from c10kplan.profiles.model import Profile


def resolve(ref: str) -> Profile:
    from c10kplan.profiles.merge import resolve as _resolve

    return _resolve(ref)


def suggest_profile(connections: int, role: str) -> str | None:
    """Name of the smallest shipped profile whose target holds at least `connections` for
    `role` ("server", "client", or "both": a profile sized for both roles); None when no shipped
    profile is big enough or the role is not one a profile is sized for. Profiles without a
    [target] (low-latency) never match."""
    from c10kplan.profiles.merge import shipped_profiles

    roles = {"server", "client"} if role == "both" else {role}
    sized = [p for p in shipped_profiles()
             if p.target is not None and roles <= set(p.target.roles)
             and p.target.connections >= connections]
    if not sized:
        return None
    return min(sized, key=lambda p: (p.target.connections, p.name)).name  # type: ignore[union-attr]
