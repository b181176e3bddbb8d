"""Resolve a profile: locate -> load -> merge along `extends` (cycle check) -> validate.

Merging is a reduce from the root ancestor to the requested profile: a child's sysctl value
replaces its parent's for the same key, each value remembers the file it came from. `target`
and `summary` belong to the requested profile (a sizing is not inherited).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from c10kplan.errors import ProfileError
from c10kplan.profiles.load import Layer, load_layer
from c10kplan.profiles.locate import locate
from c10kplan.profiles.model import ROLES, Limits, Profile, Setting, Target
from c10kplan.profiles.schema import parse_value

LIMIT_KEYS = ("nofile_soft", "nofile_hard")


def chain_of(ref: str) -> list[Layer]:
    """The layers from the requested profile up to its root ancestor (child first)."""
    layers: list[Layer] = []
    seen: dict[Path, str] = {}
    path = locate(ref)
    while True:
        real = path.resolve()
        if real in seen:
            cycle = " -> ".join([*(layer.name for layer in layers), seen[real]])
            raise ProfileError(f"{layers[-1].path}: extends: cycle in extends: {cycle}")
        layer = load_layer(path)
        seen[real] = layer.name
        layers.append(layer)
        if not layer.extends:
            return layers
        try:
            path = locate(layer.extends, near=path.parent)
        except ProfileError as exc:
            raise ProfileError(f"{layer.path}: extends: missing parent: {exc}") from None


def _pydantic_reason(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    return f"{loc}: {err.get('msg', 'invalid')}" if loc else err.get("msg", "invalid")


def _target(layer: Layer) -> Target | None:
    if layer.target is None:
        return None
    try:
        target = Target.model_validate(layer.target)
    except ValidationError as exc:
        raise ProfileError(f"{layer.path}: target.{_pydantic_reason(exc)}") from None
    bad = [r for r in target.roles if r not in ROLES]
    if bad:
        raise ProfileError(f"{layer.path}: target.roles: unknown role {bad[0]!r} "
                           f"(expected {', '.join(ROLES)})")
    return target


def _limits(layers: list[Layer]) -> Limits:
    values: dict[str, object] = {}
    source: str | None = None
    for layer in reversed(layers):
        extra = sorted(set(layer.limits) - set(LIMIT_KEYS))
        if extra:
            raise ProfileError(f"{layer.path}: limits.{extra[0]}: unknown limit "
                               f"(expected {', '.join(LIMIT_KEYS)})")
        for k in LIMIT_KEYS:
            if k in layer.limits:
                v = layer.limits[k]
                if isinstance(v, bool) or not isinstance(v, int):
                    raise ProfileError(f"{layer.path}: limits.{k}: expected an integer, got "
                                       f"{type(v).__name__}")
                values[k] = v
                source = str(layer.path)
        try:
            Limits.model_validate(values)
        except ValidationError as exc:
            raise ProfileError(f"{layer.path}: limits.{_pydantic_reason(exc)}") from None
    return Limits.model_validate({**values, "source": source})


def resolve(ref: str) -> Profile:
    """The merged, validated profile for a name or a path. Raises ProfileError."""
    layers = chain_of(ref)
    sysctl: dict[str, Setting] = {}
    for layer in reversed(layers):
        for key, raw in layer.sysctl.items():
            sysctl[key] = parse_value(key, raw, str(layer.path), allow_unknown=layer.allow_unknown)
    leaf = layers[0]
    summary = next((layer.summary for layer in layers if layer.summary), "")
    return Profile(
        name=leaf.name,
        summary=summary,
        path=str(leaf.path),
        chain=tuple(layer.name for layer in reversed(layers)),
        target=_target(leaf),
        sysctl=sysctl,
        limits=_limits(layers),
    )


def shipped_profiles() -> list[Profile]:
    """Every shipped profile, merged (raises ProfileError if one is broken)."""
    from c10kplan.profiles.locate import available

    return [resolve(str(path)) for path in available().values()]
