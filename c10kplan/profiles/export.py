"""`c10kplan export`: the profile as the input of the tool that applies it on a fleet.

Each format is checked with its real consumer (tests/integration/test_export_consumers.py):
- sysctl.d  a /etc/sysctl.d file for `sysctl -p` / systemd-sysctl. sysctl(8) writes every value
            exactly as given: it has no "raise only". So an export made ON THE TARGET HOST (the
            default; `procfs` given) reads that host's /proc/sys and writes what `apply --persist`
            writes there: a raise-only key holds max(profile floor, host value), element-wise.
            With `procfs=None` (`--portable`) the floor is written, marked with a warning.
- limits.d  a /etc/security/limits.d file (pam_limits: `domain type item value`).
- systemd   `unit=None`: a system.conf.d drop-in, `[Manager] DefaultLimitNOFILE=` (every
            service's default; systemd.exec(5) warns that raising the soft limit for all can
            break programs that use select(2)). `unit="NAME.service"`: a service.d drop-in,
            `[Service] LimitNOFILE=`, for the one service that holds the connections (preferred).
- tuned     tuned.conf with [main] and [sysctl]. tuned's `>` modifier (plugins/base.py
            `_process_assignment_modifiers`) compares int(value) > int(current): single numbers
            only. A multi-value key (tcp_mem, tcp_rmem) with `>` makes it write the literal
            `>a b c`, which the kernel refuses with EINVAL. So `>` is kept for single numbers,
            and a multi-value raise-only key gets its plain value (the host-raised one when
            exported on the target host).
- ansible   a playbook using ansible.builtin modules only (ansible-core suffices): read every
            key, work out the values (raise-only: element-wise max of host value and floor), write
            /etc/sysctl.d/90-c10kplan.conf, set the keys that differ (sysctl -w), and write the
            limits.d file. Idempotent: a second run reports changed=0.
"""

from __future__ import annotations

import json
import re

from c10kplan.errors import BadInput, ProfileError
from c10kplan.host.procfs import ProcFS
from c10kplan.profiles.formats import FORMATS
from c10kplan.profiles.model import Profile, Setting
from c10kplan.profiles.persist import (
    LIMITS_CONF,
    SYSCTL_CONF,
    header,
    nofile_pair,
    render_limits_conf,
    render_sysctl_conf,
    render_systemd_dropin,
)

__all__ = ["FORMATS", "export_profile"]

# systemd unit names (systemd.unit(5)): [A-Za-z0-9:_.\-@\\], at most 255 bytes; a drop-in for
# one service is NAME.service.d/*.conf. A template instance (foo@1.service) is allowed.
_UNIT = re.compile(r"^[A-Za-z0-9:_.\-@\\]+\.service$")


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text)


class HostValues:
    """What `apply --persist` would write for each selected key on this host: the sysctl.d
    entries of apply's own diff (plan_changes -> _persist_entries), so export and persist cannot
    disagree. Keys the host lacks (host-wide keys in a network namespace, read-only keys) are
    absent from `values` and listed in `missing` with apply's reason."""

    def __init__(self, profile: Profile, procfs: ProcFS, patterns: tuple[str, ...]) -> None:
        from c10kplan.profiles.apply import _persist_entries, plan_changes

        changes = plan_changes(profile, procfs, patterns)
        self.root = procfs.root
        self.values = {key: value for key, value, _ in _persist_entries(changes)}
        self.current = {c.key: c.current for c in changes if c.current is not None}
        self.missing = {c.key: c.reason for c in changes
                        if c.action == "skipped" and c.reason != "not selected by --keys"}


def _sysctl_comment(s: Setting, host: HostValues | None) -> str:
    if not s.raise_only:
        return ""
    if host is None:
        return (f"raise only (floor {s.text}): sysctl -p sets exactly this and LOWERS a higher "
                "host value;\n# export on the target host, without --portable, to keep it")
    value, current = host.values[s.key], host.current.get(s.key)
    if value == s.text:
        return f"raise only: the profile's floor (this host had {current})"
    return f"raise only: this host's value {current} is above the profile's floor {s.text}, kept"


def export_sysctl_d(profile: Profile, settings: list[Setting], host: HostValues | None) -> str:
    entries, left_out = [], []
    for s in settings:
        if host is not None and s.key not in host.values:
            left_out.append(f"# {s.key} left out: {host.missing.get(s.key, 'not on this host')}\n")
            continue
        value = host.values[s.key] if host is not None else s.text
        entries.append((s.key, value, _sysctl_comment(s, host)))
    text = render_sysctl_conf(profile, entries)
    head = header(profile, "sysctl.d file")
    if host is not None:
        note = (f"# Made for this host (read from {host.root / 'proc/sys'} when exported): a "
                "raise-only key holds\n# max(profile floor, this host's value), the file "
                "`c10kplan apply --persist` writes.\n")
    else:
        note = ("# Portable (--portable): raise-only keys hold the profile's floor; sysctl -p "
                "sets them exactly.\n")
    return head + note + "".join(left_out) + text[len(head):]


def export_tuned(profile: Profile, settings: list[Setting], host: HostValues | None) -> str:
    lines = ["#", f"# tuned profile generated by c10kplan from {profile.name!r} "
             f"({' -> '.join(profile.chain)})",
             "# Install: /etc/tuned/<name>/tuned.conf, then `tuned-adm profile <name>`.",
             "# nofile limits are not a tuned setting: use `c10kplan export --format limits.d`.",
             "# '>N' = raise only (tuned compares single numbers only).",
             "#", "", "[main]", f"summary={profile.summary}", "", "[sysctl]"]
    for s in settings:
        if s.raise_only and s.ints is not None and len(s.ints) > 1:
            value = host.values.get(s.key, s.text) if host is not None else s.text
            where = ("max(floor, this host's value when exported)"
                     if host is not None and s.key in host.values else "the floor")
            lines.append(f"# raise only (floor {s.text}): tuned's '>' compares one number, so "
                         f"this is\n# {where}, set as it stands")
            lines.append(f"{s.key}={value}")
        else:
            lines.append(f"{s.key}={s.display}")
    return "\n".join(lines) + "\n"


_ANSIBLE_TASKS = """\
  tasks:
    - name: Read the current value of each sysctl
      ansible.builtin.command:
        argv: [sysctl, -n, "{{ item.name }}"]
      register: c10kplan_current
      changed_when: false
      check_mode: false
      loop: "{{ c10kplan_sysctl }}"
      loop_control:
        label: "{{ item.name }}"
    - name: Work out the values (raise-only keys keep a higher host value, element-wise)
      ansible.builtin.set_fact:
        c10kplan_wanted: >-
          {{ c10kplan_wanted | default([]) + [{
               'name': r.item.name,
               'current': r.stdout.split() | join(' '),
               'value': r.item.value if 'value' in r.item else
                        r.item.floor | zip(r.stdout.split() | map('int')) | map('max') | join(' ')}] }}
      loop: "{{ c10kplan_current.results }}"
      loop_control:
        loop_var: r
        label: "{{ r.item.name }}"
    - name: Persist the sysctls in /@SYSCTL_CONF@
      ansible.builtin.copy:
        dest: /@SYSCTL_CONF@
        owner: root
        group: root
        mode: "0644"
        content: |
          @HEADER@
          {% for w in c10kplan_wanted %}
          {{ w.name }} = {{ w.value }}
          {% endfor %}
    - name: Set the sysctls whose live value differs
      ansible.builtin.command:
        argv: [sysctl, -w, "{{ item.name }}={{ item.value }}"]
      changed_when: true
      when: item.current != item.value
      loop: "{{ c10kplan_wanted }}"
      loop_control:
        label: "{{ item.name }}"
"""


def export_ansible(profile: Profile, settings: list[Setting]) -> str:
    hdr = header(profile, "sysctl.d file").replace("\n", "\n          ").rstrip()
    hdr += "\n          # Raise-only keys hold max(profile floor, host value), as apply --persist."
    out = [
        "---",
        f"# Ansible playbook generated by c10kplan from profile {profile.name!r} "
        f"({' -> '.join(profile.chain)}).",
        f"# {profile.summary}",
        "# Run: ansible-playbook -i INVENTORY this.yml [-e target_hosts=GROUP]",
        "# Needs ansible-core only (ansible.builtin modules).",
        f"- name: {_q('C10kplan profile ' + profile.name)}",
        "  hosts: \"{{ target_hosts | default('all') }}\"",
        "  become: true",
        "  gather_facts: false",
        "  vars:",
        "    c10kplan_sysctl:",
    ]
    for s in settings:
        if s.raise_only and s.ints is not None:
            out.append(f"      - {{name: {_q(s.key)}, floor: {json.dumps(list(s.ints))}}}")
        else:
            out.append(f"      - {{name: {_q(s.key)}, value: {_q(s.text)}}}")
    if not settings:
        out[-1] += " []"
    out.append(_ANSIBLE_TASKS.replace("@SYSCTL_CONF@", SYSCTL_CONF).replace("@HEADER@", hdr)
               .rstrip("\n"))
    limits = render_limits_conf(profile, profile.limits)
    if limits is not None:
        body = "\n".join(("          " + ln).rstrip() for ln in limits.rstrip("\n").split("\n"))
        out += [
            f"    - name: Persist the nofile limits in /{LIMITS_CONF} (next login)",
            "      ansible.builtin.copy:",
            f"        dest: /{LIMITS_CONF}",
            "        owner: root",
            "        group: root",
            "        mode: \"0644\"",
            "        content: |",
            body,
        ]
    return "\n".join(out) + "\n"


def export_systemd_service(profile: Profile, unit: str) -> str | None:
    """A NAME.service.d drop-in raising LimitNOFILE for one service, or None without limits."""
    pair = nofile_pair(profile.limits)
    if pair is None:
        return None
    return (header(profile, f"systemd drop-in for {unit}")
            + f"# Install: /etc/systemd/system/{unit}.d/90-c10kplan.conf, then\n"
            + f"# `systemctl daemon-reload && systemctl restart {unit}`.\n"
            + "[Service]\n"
            + f"LimitNOFILE={pair}\n")


def check_unit(unit: str) -> str:
    """A service unit name for `--unit`, or BadInput."""
    if len(unit.encode()) > 255 or not _UNIT.match(unit) or unit == ".service":
        raise BadInput(f"--unit {unit!r}: expected a systemd service name such as nginx.service "
                       "(letters, digits, ':_.-@\\', ending in .service)")
    return unit


def export_profile(profile: Profile, fmt: str, patterns: tuple[str, ...] = (), *,
                   procfs: ProcFS | None = None, unit: str | None = None) -> str:
    """The profile rendered in `fmt`. `procfs`: the target host's tree, read for sysctl.d and
    tuned so raise-only keys keep a higher host value (None: portable, the profile's floors).
    `unit`: systemd only, a per-service drop-in for that unit. Raises ProfileError for an
    unknown format or a format the profile has nothing for (no nofile limits)."""
    if fmt not in FORMATS:
        raise ProfileError(f"--format {fmt!r}: unknown format (expected {', '.join(FORMATS)})")
    if unit is not None and fmt != "systemd":
        raise BadInput(f"--unit is for --format systemd, not {fmt}")
    settings = profile.selected(patterns)
    if fmt == "ansible":
        return export_ansible(profile, settings)
    if fmt in ("sysctl.d", "tuned"):
        host = HostValues(profile, procfs, patterns) if procfs is not None else None
        if fmt == "sysctl.d":
            return export_sysctl_d(profile, settings, host)
        return export_tuned(profile, settings, host)
    if fmt == "limits.d":
        text = render_limits_conf(profile, profile.limits)
    elif unit is not None:
        text = export_systemd_service(profile, check_unit(unit))
    else:
        text = render_systemd_dropin(profile, profile.limits)
    if text is None:
        raise ProfileError(f"{profile.path}: limits: profile {profile.name!r} sets no nofile "
                           f"limit, nothing to export as {fmt}")
    return text
