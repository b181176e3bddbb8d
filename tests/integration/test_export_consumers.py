"""Every export format, for every shipped profile, run by the tool that consumes it.

- tuned: tuned's own loader and sysctl plugin (Debian `tuned`, run under /usr/bin/python3 in a
  network namespace of the test's own; host-wide keys go to a fake tree).
- Ansible: ansible-playbook --syntax-check, --check, a real run and a second run (changed=0) in
  an `unshare -m -n` sandbox (tmpfs over /etc/sysctl.d and /etc/security/limits.d), then
  ansible-lint's default profile.
- sysctl.d: procps `sysctl -p FILE` in a namespace where somaxconn is already 65535.
- systemd: `systemd-analyze verify` of a service with the exported [Service] drop-in; the
  [Manager] drop-in through `systemd-analyze cat-config --root`.
- limits.d: parsed as pam_limits parses limits.conf(5), and applied by the real pam_limits
  (runuser's PAM session, in a mount namespace with a tmpfs over /etc/security/limits.d).

The host's own settings are never written: sysctls only inside `unshare -n`, files only under
tmp_path or on a tmpfs mounted inside the test's own mount namespace.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from c10kplan.profiles.export import export_profile
from c10kplan.profiles.merge import resolve
from c10kplan.profiles.schema import keys_in_scope, parse_value
from tests.unit.test_profiles_apply import make_tree

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SHIPPED = ("base", "c10k", "c100k", "c1m", "low-latency")
WITH_LIMITS = ("base", "c10k", "c100k", "c1m")
SYS_PY = "/usr/bin/python3"  # tuned is a Debian python3 package
TUNED = Path("/usr/lib/python3/dist-packages/tuned")

pytestmark = pytest.mark.netns


def _need_netns() -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for a namespace of the test's own")


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (.ci/run installs it)")
    return path


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("C10KPLAN_ROOT", None)
    env.update(extra)
    return env


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(t) for t in text.split())


# ---------------------------------------------------------------------------------------- tuned

@pytest.mark.parametrize("name", SHIPPED)
def test_tuned_loads_and_applies_every_shipped_profile(name: str, tmp_path: Path) -> None:
    """tuned applies what we export: every value it writes is read back as planned, it logs no
    warning ("cannot compare" was the multi-value '>' bug) and its own verify passes."""
    _need_netns()
    if not (Path(SYS_PY).is_file() and TUNED.is_dir()):
        pytest.skip("Debian package tuned is not installed (.ci/run installs it)")
    profile = resolve(name)
    pdir = tmp_path / "profiles" / f"c10kplan-{name}"
    pdir.mkdir(parents=True)
    (pdir / "tuned.conf").write_text(export_profile(profile, "tuned"))  # portable: for a fleet
    fake = make_tree(tmp_path / "fake")
    preset = {"net.core.somaxconn": "65535"}  # higher than every profile's floor: must stay
    spec = {"profiles_dir": str(tmp_path / "profiles"), "profile": f"c10kplan-{name}",
            "fake_root": str(fake), "host_keys": list(keys_in_scope("host")),
            "netns_keys": list(keys_in_scope("netns")),
            "parent_netns": os.stat("/proc/self/ns/net").st_ino, "preset": preset,
            "state": str(tmp_path)}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.run(["unshare", "-n", SYS_PY, str(HERE / "consumers" / "tuned_apply.py"),
                           str(tmp_path / "spec.json")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["log"] == [], doc["log"]
    assert doc["verified"] is True
    assert set(doc["read_back"]) == set(profile.sysctl)
    for key, s in profile.sysctl.items():
        got = doc["read_back"][key]
        assert got is not None, key
        # What the kernel (netns keys) or the fake tree (host keys) holds is a value the
        # kernel accepts: the schema's own type, count, bounds and order checks.
        parse_value(key, got.replace("\t", " "), "tuned read-back", allow_unknown=False)
        want = s.ints
        if s.raise_only and len(s.ints) == 1:  # tuned's '>' keeps a higher current value
            want = (max(s.ints[0], _ints(doc["before"][key])[0]),)
        assert _ints(got) == want, (key, got, want)
    if "net.core.somaxconn" in profile.sysctl:
        assert doc["read_back"]["net.core.somaxconn"] == "65535"


# -------------------------------------------------------------------------------------- Ansible

ANSIBLE_SANDBOX = r"""
set -eu
mount -t tmpfs tmpfs /etc/sysctl.d
mkdir -p /etc/security/limits.d
mount -t tmpfs tmpfs /etc/security/limits.d
sysctl -q -w net.core.somaxconn=65535
play() { ansible-playbook -i "$INV" "$PLAY" "$@"; }
play --syntax-check > "$OUT/syntax.txt"
play --check > "$OUT/check.txt"
play > "$OUT/run1.txt"
play > "$OUT/run2.txt"
cp /etc/sysctl.d/90-c10kplan.conf "$OUT/sysctl.conf"
if [ -e /etc/security/limits.d/90-c10kplan.conf ]; then
    cp /etc/security/limits.d/90-c10kplan.conf "$OUT/limits.conf"
fi
for k in $KEYS; do printf '%s=%s\n' "$k" "$(sysctl -n "$k" | tr '\t' ' ')"; done > "$OUT/live.txt"
"""


def _recap(text: str) -> dict[str, int]:
    line = next(ln for ln in text.splitlines() if ln.startswith("localhost"))
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_ansible_playbook_checks_runs_and_is_idempotent(name: str, tmp_path: Path) -> None:
    _need_netns()
    _need("ansible-playbook")
    profile = resolve(name)
    # The sandbox is a child network namespace: only the per-namespace keys exist there.
    from c10kplan.profiles.apply import parse_patterns

    patterns = parse_patterns("netns")
    play = tmp_path / "play.yml"
    play.write_text(export_profile(profile, "ansible", patterns))
    inv = tmp_path / "inventory"
    # su: become works as root without sudo installed; the local connection runs the modules
    # in the sandbox's namespaces.
    inv.write_text(f"localhost ansible_connection=local ansible_python_interpreter="
                   f"{sys.executable} ansible_become_method=su\n")
    out = tmp_path / "out"
    out.mkdir()
    keys = [s.key for s in profile.selected(patterns)]
    env = _env(INV=str(inv), PLAY=str(play), OUT=str(out), KEYS=" ".join(keys),
               ANSIBLE_HOME=str(tmp_path / "ansible"), ANSIBLE_LOCAL_TEMP=str(tmp_path / "lt"),
               ANSIBLE_REMOTE_TEMP=str(tmp_path / "rt"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_RETRY_FILES_ENABLED="0")
    proc = subprocess.run(["unshare", "-m", "-n", "sh", "-c", ANSIBLE_SANDBOX], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert _recap((out / "check.txt").read_text())["failed"] == 0
    first = _recap((out / "run1.txt").read_text())
    second = _recap((out / "run2.txt").read_text())
    assert first["failed"] == 0 and first["changed"] >= 1
    assert second["failed"] == 0 and second["changed"] == 0, (out / "run2.txt").read_text()
    live = dict(ln.split("=", 1) for ln in (out / "live.txt").read_text().splitlines())
    persisted = dict(ln.split(" = ") for ln in (out / "sysctl.conf").read_text().splitlines()
                     if ln and not ln.startswith("#"))
    assert persisted == live
    for key in keys:
        s = profile.sysctl[key]
        if key == "net.core.somaxconn":  # raise only, and the host already had more
            assert live[key] == "65535"
        elif s.raise_only:
            assert _ints(live[key]) >= s.ints
        else:
            assert live[key] == s.text
    if profile.limits.nofile_hard is not None:
        assert f"* hard nofile {profile.limits.nofile_hard}" in (out / "limits.conf").read_text()


@pytest.mark.slow
def test_ansible_lint_default_profile_is_clean(tmp_path: Path) -> None:
    lint = _need("ansible-lint")
    plays = []
    for name in SHIPPED:
        plays.append(tmp_path / f"{name}.yml")
        plays[-1].write_text(export_profile(resolve(name), "ansible"))
    # One ansible-lint over every playbook: its start-up (~6 s) is most of the cost of each run.
    proc = subprocess.run([lint, "--offline", "--nocolor", *map(str, plays)], cwd=tmp_path,
                          env=_env(ANSIBLE_HOME=str(tmp_path / "ansible")),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 failure(s), 0 warning(s)" in proc.stdout + proc.stderr
    assert f"in {len(plays)} files processed" in proc.stdout + proc.stderr  # every playbook was linted


# ------------------------------------------------------------------------------------- sysctl.d

SYSCTL_SCENARIO = r"""
set -eu
sysctl -q -w net.core.somaxconn=65535
python3 -m c10kplan export --profile "$PROFILE" --format sysctl.d --keys netns > "$OUT/host.conf"
python3 -m c10kplan export --profile "$PROFILE" --format sysctl.d --keys netns --portable \
    > "$OUT/portable.conf"
sysctl -q -p "$OUT/host.conf"
for k in $KEYS; do printf '%s=%s\n' "$k" "$(sysctl -n "$k" | tr '\t' ' ')"; done > "$OUT/live.txt"
sysctl -q -p "$OUT/portable.conf"
printf '%s\n' "$(sysctl -n net.core.somaxconn)" > "$OUT/portable-somaxconn.txt"
"""


@pytest.mark.parametrize("name", SHIPPED)
def test_sysctl_p_keeps_a_higher_host_value(name: str, tmp_path: Path) -> None:
    """Exported on the target host (here: a namespace with somaxconn 65535), `sysctl -p`
    keeps 65535; the --portable file sets the floor, as its comment warns."""
    _need_netns()
    _need("sysctl")
    profile = resolve(name)
    from c10kplan.profiles.apply import parse_patterns

    keys = [s.key for s in profile.selected(parse_patterns("netns"))]
    env = _env(PROFILE=name, OUT=str(tmp_path), KEYS=" ".join(keys),
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    proc = subprocess.run(["unshare", "-n", "sh", "-c", SYSCTL_SCENARIO], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    live = dict(ln.split("=", 1) for ln in (tmp_path / "live.txt").read_text().splitlines())
    text = (tmp_path / "host.conf").read_text()
    written = dict(ln.split(" = ") for ln in text.splitlines() if ln and not ln.startswith("#"))
    assert written == live and set(written) == set(keys)
    floor = profile.sysctl["net.core.somaxconn"].text
    assert live["net.core.somaxconn"] == "65535"
    assert "this host's value 65535 is above the profile's floor" in text
    assert (tmp_path / "portable-somaxconn.txt").read_text().strip() == floor
    assert "LOWERS a higher host value" in (tmp_path / "portable.conf").read_text()


# -------------------------------------------------------------------------------------- systemd

SERVICE = "c10kplan-probe.service"


def _verify(units: Path) -> subprocess.CompletedProcess[str]:
    # SYSTEMD_UNIT_PATH=DIR: (trailing colon: then the default path) makes systemd load the
    # unit's drop-ins from DIR/NAME.service.d/.
    return subprocess.run([_need("systemd-analyze"), "verify", str(units / SERVICE)],
                          env=dict(os.environ, SYSTEMD_UNIT_PATH=f"{units}:"),
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name", WITH_LIMITS)
def test_systemd_analyze_verifies_the_service_drop_in(name: str, tmp_path: Path) -> None:
    units = tmp_path / "units"
    dropins = units / f"{SERVICE}.d"
    dropins.mkdir(parents=True)
    (units / SERVICE).write_text("[Unit]\nDescription=c10kplan probe\n\n"
                                 "[Service]\nExecStart=/bin/true\n")
    profile = resolve(name)
    text = export_profile(profile, "systemd", unit=SERVICE)
    (dropins / "90-c10kplan.conf").write_text(text)
    proc = _verify(units)
    assert proc.returncode == 0 and proc.stderr == "" and proc.stdout == "", proc.stderr
    lim = profile.limits
    assert f"\nLimitNOFILE={lim.nofile_soft}:{lim.nofile_hard}\n" in text
    # The check can fail: the [Manager] file in a service.d folder is what issue 13 saw, and
    # a bad value is refused, so systemd-analyze really parses our drop-in.
    (dropins / "91-manager.conf").write_text(export_profile(profile, "systemd"))
    assert "Unknown section 'Manager'" in _verify(units).stderr
    (dropins / "91-manager.conf").write_text("[Service]\nLimitNOFILE=lots\n")
    assert "Failed to parse resource value" in _verify(units).stderr


@pytest.mark.parametrize("name", WITH_LIMITS)
def test_systemd_finds_the_manager_drop_in(name: str, tmp_path: Path) -> None:
    """systemd-analyze verify checks units, not system.conf; cat-config --root shows that
    systemd's own search finds the file where the export says to put it, whole."""
    text = export_profile(resolve(name), "systemd")
    conf = tmp_path / "etc/systemd/system.conf.d/90-c10kplan.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text(text)
    proc = subprocess.run([_need("systemd-analyze"), "cat-config", f"--root={tmp_path}",
                           "systemd/system.conf"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"# {conf}\n" in proc.stdout and text in proc.stdout
    assert "[Manager]\nDefaultLimitNOFILE=" in text


# ------------------------------------------------------------------------------------- limits.d

# limits.conf(5), as pam_limits.c parse_config_file reads it: `domain type item value`,
# type soft|hard|-, value an integer or unlimited/infinity/-1; '#' starts a comment.
_TYPES = {"soft", "hard", "-"}
_ITEMS = {"core", "data", "fsize", "memlock", "nofile", "rss", "stack", "cpu", "nproc", "as",
          "maxlogins", "maxsyslogins", "priority", "locks", "sigpending", "msgqueue", "nice",
          "rtprio", "chroot", "nonewprivs"}


def _pam_limits(text: str) -> dict[tuple[str, str, str], int]:
    out: dict[tuple[str, str, str], int] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        assert len(fields) == 4, f"pam_limits: invalid line {line!r}"
        domain, kind, item, value = fields
        assert kind in _TYPES and item in _ITEMS, line
        assert re.fullmatch(r"-?\d+|unlimited|infinity", value), line
        out[(domain, kind, item)] = int(value)
    return out


@pytest.mark.parametrize("name", WITH_LIMITS)
def test_limits_d_parses_as_pam_limits_reads_it(name: str) -> None:
    profile = resolve(name)
    parsed = _pam_limits(export_profile(profile, "limits.d"))
    lim = profile.limits
    assert parsed == {("*", "soft", "nofile"): lim.nofile_soft,
                      ("*", "hard", "nofile"): lim.nofile_hard}
    assert parsed[("*", "soft", "nofile")] <= parsed[("*", "hard", "nofile")]


PAM_SCENARIO = r"""
set -eu
mount -t tmpfs tmpfs /etc/security/limits.d
cp "$FILE" /etc/security/limits.d/90-c10kplan.conf
runuser -u nobody -- sh -c 'ulimit -Sn; ulimit -Hn'
"""


def test_pam_limits_applies_an_exported_limits_d_file(tmp_path: Path) -> None:
    """runuser opens a PAM session (Debian's /etc/pam.d/runuser has pam_limits) for nobody; the
    wildcard domain does not apply to root, so the session is another user's. The shipped
    profiles ask for more than this machine's hard limit (20000, no CAP_SYS_RESOURCE: the
    kernel refuses the raise), so a profile within it is exported: same renderer, same file."""
    _need_netns()
    _need("runuser")
    if not Path("/lib/x86_64-linux-gnu/security/pam_limits.so").exists() and \
            not Path("/usr/lib/x86_64-linux-gnu/security/pam_limits.so").exists():
        pytest.skip("pam_limits.so is not installed (libpam-modules)")
    import resource

    soft, hard = 512, min(4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    prof = tmp_path / "small.toml"
    prof.write_text(f'name = "small"\nextends = "base"\nsummary = "pam test"\n'
                    f"[limits]\nnofile_soft = {soft}\nnofile_hard = {hard}\n")
    text = export_profile(resolve(str(prof)), "limits.d")
    assert _pam_limits(text) == {("*", "soft", "nofile"): soft, ("*", "hard", "nofile"): hard}
    (tmp_path / "limits.conf").write_text(text)
    proc = subprocess.run(["unshare", "-m", "sh", "-c", PAM_SCENARIO],
                          env=_env(FILE=str(tmp_path / "limits.conf")), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(soft), str(hard)]
