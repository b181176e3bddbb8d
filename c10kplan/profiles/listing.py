"""The `profiles list --json` document: one summary per shipped profile."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from c10kplan.profiles.model import Profile, Target


class ProfileSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    summary: str
    path: str  # the file it was loaded from
    chain: tuple[str, ...]  # root ancestor -> this profile
    target: Target | None = None  # what it is sized for; None: not sized (low-latency)


class ProfileListing(BaseModel):
    model_config = ConfigDict(frozen=True)

    profiles: tuple[ProfileSummary, ...]

    @classmethod
    def of(cls, profiles: list[Profile]) -> ProfileListing:
        return cls(profiles=tuple(ProfileSummary(name=p.name, summary=p.summary, path=p.path,
                                                 chain=p.chain, target=p.target)
                                  for p in profiles))
