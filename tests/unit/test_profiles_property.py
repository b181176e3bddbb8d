"""Property: apply followed by rollback restores any tree exactly (byte for byte), whatever
the host values, the profile values (plain or raise-only), the --keys subset, the existing
persisted files, and wherever a write fails."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from c10kplan.errors import ApplyFailed
from c10kplan.host.procfs import ProcFS
from c10kplan.profiles.apply import apply_profile, rollback
from c10kplan.profiles.backup import StateStore
from c10kplan.profiles.model import Limits, Profile
from c10kplan.profiles.persist import SYSCTL_CONF
from c10kplan.profiles.schema import SUPPORTED, KeySpec, parse_value
from tests.unit.test_profiles_apply import failing_on, make_tree, snapshot

KEYS = sorted(SUPPORTED)


def ints_for(spec: KeySpec) -> st.SearchStrategy[tuple[int, ...]]:
    hi = min(spec.hi, 10**7)
    vals = st.lists(st.integers(spec.lo, hi), min_size=spec.count, max_size=spec.count)
    if spec.order == "increasing":
        vals = vals.filter(lambda v: all(a < b for a, b in zip(v, v[1:])))
    elif spec.order == "nondecreasing":
        vals = vals.map(sorted)
    return vals.map(tuple)


@st.composite
def cases(draw: st.DrawFn) -> tuple[dict[str, str], dict[str, str], tuple[str, ...], str | None, int]:
    host = {k: "\t".join(map(str, draw(ints_for(SUPPORTED[k])))) for k in KEYS}
    chosen = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=12, unique=True))
    profile: dict[str, str] = {}
    for k in chosen:
        spec = SUPPORTED[k]
        raise_only = spec.raise_ok and draw(st.booleans())
        profile[k] = (">" if raise_only else "") + " ".join(map(str, draw(ints_for(spec))))
    patterns = draw(st.sampled_from([(), ("net.*",), ("fs.*",), ("net.ipv4.tcp_*", "fs.nr_open")]))
    existing = draw(st.one_of(st.none(), st.text(max_size=40)))
    fail_at = draw(st.integers(0, 6))  # 0 = no failure, n = the n-th write fails
    return host, profile, patterns, existing, fail_at


def build(profile_values: dict[str, str]) -> Profile:
    sysctl = {k: parse_value(k, v, "prop.toml", allow_unknown=False)
              for k, v in profile_values.items()}
    return Profile(name="prop", summary="", path="prop.toml", chain=("prop",), sysctl=sysctl,
                   limits=Limits(nofile_soft=32, nofile_hard=64, source="prop.toml"))


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_apply_then_rollback_restores_any_tree(case) -> None:  # noqa: ANN001
    host, values, patterns, existing, fail_at = case
    with tempfile.TemporaryDirectory() as tmp:
        root = make_tree(Path(tmp) / "root", host)
        if existing is not None:
            (root / SYSCTL_CONF).parent.mkdir(parents=True)
            (root / SYSCTL_CONF).write_text(existing)
        store = StateStore(Path(tmp) / "state")
        before = snapshot(root)
        # fail_at 0 never fails; n fails the n-th write through the writer seam
        writer = failing_on(fail_at, root, lambda: OSError(errno.EPERM, os.strerror(errno.EPERM)))
        try:
            report = apply_profile(build(values), procfs=ProcFS(root), store=store,
                                   patterns=patterns, persist=True, writer=writer)
        except ApplyFailed:
            assert snapshot(root) == before  # a failed apply leaves nothing behind
            assert not store.file.exists()
            return
        for key in report.written:  # what was written reads back
            assert key in values
        rollback(store)
        assert snapshot(root) == before
