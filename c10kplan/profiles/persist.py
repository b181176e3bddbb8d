"""Render the persistent configuration files (shared by `apply --persist` and `export`).

What each file does, and when it takes effect:
- etc/sysctl.d/90-c10kplan.conf: read by systemd-sysctl at boot (or `sysctl --system` now).
  "90-" sorts after distribution defaults (10-, 50-) so these values win; 99-sysctl.conf
  (the /etc/sysctl.conf link on Debian) still sorts after it.
- etc/security/limits.d/90-c10kplan.conf: pam_limits reads it at the start of a login
  session; running sessions keep their limits (re-login needed).
- etc/systemd/system.conf.d/90-c10kplan.conf: DefaultLimitNOFILE=soft:hard for every service
  systemd starts; needs `systemctl daemon-reexec` and a restart of each service.
"""

from __future__ import annotations

from collections.abc import Iterable

from c10kplan.profiles.model import Limits, Profile

SYSCTL_CONF = "etc/sysctl.d/90-c10kplan.conf"
LIMITS_CONF = "etc/security/limits.d/90-c10kplan.conf"
SYSTEMD_DROPIN = "etc/systemd/system.conf.d/90-c10kplan.conf"
# The only files apply writes: rollback restores nothing else, whatever a backup says.
MANAGED_FILES = (SYSCTL_CONF, LIMITS_CONF, SYSTEMD_DROPIN)
# Their parent directories (relative to the root): the only ones apply may create and remove.
MANAGED_DIRS = tuple(sorted({"/".join(f.split("/")[:i]) for f in MANAGED_FILES
                             for i in range(1, f.count("/") + 1)}))


def header(profile: Profile, what: str) -> str:
    return (f"# {what} written by c10kplan from profile {profile.name!r} "
            f"({' -> '.join(profile.chain)}).\n# {profile.summary}\n")


def render_sysctl_conf(profile: Profile, entries: Iterable[tuple[str, str, str]]) -> str:
    """sysctl.d(5) text: `key = value` lines; entries are (key, value, comment)."""
    lines = [header(profile, "sysctl.d file")]
    for key, value, comment in entries:
        if comment:
            lines.append(f"# {comment}\n")
        lines.append(f"{key} = {value}\n")
    return "".join(lines)


def render_limits_conf(profile: Profile, limits: Limits, domain: str = "*") -> str | None:
    """limits.conf(5) text for nofile, or None when the profile sets no nofile limit."""
    if limits.nofile_soft is None and limits.nofile_hard is None:
        return None
    lines = [header(profile, "limits.d file"),
             "# Applies to new login sessions (pam_limits); log out and in again.\n"]
    if limits.nofile_soft is not None:
        lines.append(f"{domain} soft nofile {limits.nofile_soft}\n")
    if limits.nofile_hard is not None:
        lines.append(f"{domain} hard nofile {limits.nofile_hard}\n")
    return "".join(lines)


def nofile_pair(limits: Limits) -> str | None:
    """systemd's `soft:hard` form (a single value sets both)."""
    soft = limits.nofile_soft or limits.nofile_hard
    hard = limits.nofile_hard or limits.nofile_soft
    if soft is None or hard is None:
        return None
    return f"{soft}:{hard}"


def render_systemd_dropin(profile: Profile, limits: Limits) -> str | None:
    """A system.conf.d drop-in setting DefaultLimitNOFILE, or None without nofile limits."""
    pair = nofile_pair(limits)
    if pair is None:
        return None
    return (header(profile, "systemd manager drop-in")
            + "# Needs `systemctl daemon-reexec`, then a restart of each service.\n"
            + "# For one service only, put `[Service]` + `LimitNOFILE=" + pair + "` in\n"
            + "# /etc/systemd/system/<name>.service.d/90-c10kplan.conf instead.\n"
            + "[Manager]\n"
            + f"DefaultLimitNOFILE={pair}\n")


def persisted_files(profile: Profile, sysctl_entries: list[tuple[str, str, str]]) -> dict[str, str]:
    """Path under the root -> content, for `apply --persist`."""
    out = {SYSCTL_CONF: render_sysctl_conf(profile, sysctl_entries)}
    limits = render_limits_conf(profile, profile.limits)
    dropin = render_systemd_dropin(profile, profile.limits)
    if limits is not None:
        out[LIMITS_CONF] = limits
    if dropin is not None:
        out[SYSTEMD_DROPIN] = dropin
    return out
