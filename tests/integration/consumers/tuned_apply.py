"""Apply a tuned profile with tuned's OWN code, inside the caller's network namespace.

Run by tests/integration/test_export_consumers.py as
    unshare -n /usr/bin/python3 tuned_apply.py SPEC.json
(tuned is a Debian python3 package: it lives in /usr/lib/python3/dist-packages, so this runs
under the system interpreter, not the project's). SPEC holds: profiles_dir, profile, fake_root,
host_keys (host-wide keys: redirected into fake_root), netns_keys (written to this namespace's
/proc/sys), parent_netns (the inode of the caller's namespace: refuse to run in it), preset
({key: value} written before tuned runs), state (a scratch folder).

tuned's path: profiles.Loader (locator + merger, as tuned-adm would load it), then the sysctl
plugin's create_instance -> instance_apply_tuning (_instance_apply_static: read the original,
_process_assignment_modifiers, write) and instance_verify_tuning. Prints one JSON document:
the values before and after, tuned's warnings and errors, and tuned's own verify verdict.
"""

import json
import logging
import os
import sys

import tuned.logs  # noqa: F401  (sets tuned's logger class before the plugins load)
import tuned.plugins.instance
import tuned.plugins.plugin_sysctl as plugin_sysctl
import tuned.profiles
import tuned.storage
from tuned.utils.global_config import GlobalConfig


def main():
    with open(sys.argv[1]) as fh:
        spec = json.load(fh)
    if os.stat("/proc/self/ns/net").st_ino == spec["parent_netns"]:
        sys.exit("refusing: not inside a network namespace of our own")
    host, netns = set(spec["host_keys"]), set(spec["netns_keys"])

    def sysctl_path(option):
        rel = option.replace(".", "/")
        if option in host:
            return os.path.join(spec["fake_root"], "proc/sys", rel)
        if option in netns:
            return "/proc/sys/" + rel
        raise RuntimeError("key of unknown scope, refusing to write it: " + option)

    plugin_sysctl._get_sysctl_path = sysctl_path  # the one seam: where a key lives
    for key, value in spec["preset"].items():
        with open(sysctl_path(key), "w") as fh:
            fh.write(value)

    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append("%s: %s" % (record.levelname, record.getMessage()))

    # tuned's modules log to children of the "tuned" logger (tuned.logs.get); keep warnings up.
    logging.getLogger("tuned").addHandler(Keep(level=logging.WARNING))

    conf = os.path.join(spec["state"], "tuned-main.conf")
    with open(conf, "w") as fh:
        fh.write("reapply_sysctl = 0\n")  # never re-read the host's own /etc/sysctl.d
    cfg = GlobalConfig(config_file=conf)
    variables = tuned.profiles.variables.Variables()
    loader = tuned.profiles.Loader(tuned.profiles.Locator([spec["profiles_dir"]]),
                                   tuned.profiles.Factory(), tuned.profiles.Merger(), cfg, variables)
    profile = loader.load(spec["profile"])
    options = profile.units["sysctl"].options

    storage = tuned.storage.Factory(tuned.storage.PickleProvider(
        os.path.join(spec["state"], "save.pickle")))
    plugin = plugin_sysctl.SysctlPlugin(None, storage, None, None, None,
                                        tuned.plugins.instance.Factory(), cfg, variables)
    instance = plugin.create_instance("sysctl", None, None, None, None, options)
    plugin.initialize_instance(instance)
    before = {key: plugin_sysctl._read_sysctl(key) for key in options}
    plugin.instance_apply_tuning(instance)
    verified = plugin.instance_verify_tuning(instance, False)
    read_back = {key: plugin_sysctl._read_sysctl(key) for key in options}
    print(json.dumps({"options": dict(options), "before": before, "read_back": read_back, "log": records,
                      "verified": verified}))


main()
