"""`c10kplan export --format ansible-storm`: a playbook that storms one server from every host
of an inventory group at once, then merges the results on the controller. Pure: plan in,
text out. ansible.builtin modules only.

Four plays; the load-host plays run on every host of the group in parallel (up to `-f FORKS`
at a time) and stop everywhere at the first failure (`any_errors_fatal`):
1. load hosts: pip-install c10kplan (the version given) into a virtualenv; `check --role client`
   for the host's share (a FAIL stops the play before a single connection is opened);
2. controller: one start time for everyone, now + `start_delay` s, taken after every check
   passed (`start_delay` covers launching the storms: about a second per batch of forks);
3. load hosts: `storm --share I/K --start-at T --json` as an `async` job polled by
   async_status (I = the host's place in the group, K = the group's size); the JSON result is
   saved on the host and fetched into the controller's results directory;
4. controller: `c10kplan merge --json` over the fetched results, saved as merged.json; the
   play fails unless the merged verdict is PASS.

Inventory variables: INVENTORY_VARS below, also listed at the top of every playbook.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from c10kplan import __version__
from c10kplan.storm.runner import ramp_seconds

# (name, meaning): every one optional, the default in the playbook.
INVENTORY_VARS: tuple[tuple[str, str], ...] = (
    ("c10kplan_storm_group", "the group of load hosts (default: the --group given)"),
    ("c10kplan_package", "what pip installs (default c10kplan==VERSION; a path or a wheel works)"),
    ("c10kplan_venv", "the virtualenv c10kplan goes into (default ~/.c10kplan-venv)"),
    ("c10kplan_venv_site_packages", "true: the virtualenv sees the system's packages (default false)"),
    ("c10kplan_pip_extra_args", "e.g. '--no-index --no-deps' for an offline install"),
    ("c10kplan_exec_prefix", "words before every c10kplan command on the host, e.g. 'ip netns exec NS'"),
    ("c10kplan_source_ips", "this host's --source-ips (default: the plan given, sliced by share)"),
    ("c10kplan_remote_dir", "where each host keeps its result (default /tmp/c10kplan-storm)"),
    ("c10kplan_results_dir", "where the controller collects them (default ./c10kplan-storm-results)"),
    ("c10kplan_merge_cmd", "the controller's c10kplan, as a list (default ['c10kplan'])"),
)
POLL_DELAY = 2  # s between async_status polls
SLACK = 120  # s of margin on the async job's bound


@dataclass(frozen=True)
class StormPlan:
    """What the playbook runs; values already validated (cli/export_storm.py)."""

    target: str
    connections: int
    storm_options: tuple[str, ...] = ()  # e.g. ("--message-rate", "1", "--duration", "10")
    check_options: tuple[str, ...] = ()  # e.g. ("--message-rate", "1", "--message-size", "64")
    source_ips: str = "auto"
    group: str = "storm"
    version: str = __version__
    start_delay: float = 30.0
    connect_rate: float = 0.0
    connect_timeout: float = 5.0
    duration: float = 10.0

    @property
    def job_seconds(self) -> int:
        """A bound for one host's storm job: the wait for the start, the ramp (storm.runner's
        ramp_seconds), the hold, and slack."""
        ramp = ramp_seconds(self.connections, self.connect_rate, self.connect_timeout)
        return int(math.ceil(self.start_delay + ramp + self.duration + SLACK))


def _q(text: str) -> str:
    """A YAML double-quoted scalar (a JSON string is one)."""
    return json.dumps(text)


def _jinja(text: str) -> str:
    """A Jinja string literal in single quotes, for use inside a double-quoted YAML scalar."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _list(items, indent: int) -> list[str]:
    pad = " " * indent
    return [f"{pad}- {_q(str(i))}" for i in items] or [f"{pad}[]"]


def storm_playbook(plan: StormPlan) -> str:
    group = f"c10kplan_storm_group | default({_jinja(plan.group)})"
    retries = int(math.ceil(plan.job_seconds / POLL_DELAY))
    # The variables both plays on the load hosts use (play vars: -e overrides them; the
    # inventory's c10kplan_* variables feed them through default()).
    host_vars = [
        "  vars:",
        f"    storm_target: {_q(plan.target)}",
        f"    storm_connections: {plan.connections}",
        "    storm_options:",
        *_list(plan.storm_options, 6),
        "    check_options:",
        *_list(plan.check_options, 6),
        f"    storm_package: \"{{{{ c10kplan_package | default({_jinja('c10kplan==' + plan.version)}) }}}}\"",
        "    storm_venv: \"{{ c10kplan_venv | default('~/.c10kplan-venv') }}\"",
        "    storm_remote_dir: \"{{ c10kplan_remote_dir | default('/tmp/c10kplan-storm') }}\"",
        "    storm_results_dir: \"{{ c10kplan_results_dir | default('./c10kplan-storm-results') }}\"",
        f"    storm_source_ips: \"{{{{ c10kplan_source_ips | default({_jinja(plan.source_ips)}) }}}}\"",
        "    storm_cmd: \"{{ (c10kplan_exec_prefix | default('')).split() + [storm_venv ~ '/bin/c10kplan'] }}\"",
        "    storm_index: \"{{ ansible_play_hosts_all.index(inventory_hostname) + 1 }}\"",
        "    storm_count: \"{{ ansible_play_hosts_all | length }}\"",
        "    # host I's share, as `storm --share I/K` splits: the first N % K hosts take one more",
        "    storm_share_connections: >-",
        "      {{ storm_connections // (storm_count | int)",
        "      + ((storm_index | int) <= storm_connections % (storm_count | int)) | int }}",
        "    storm_result: \"{{ storm_remote_dir }}/storm-{{ inventory_hostname }}.json\"",
    ]
    out = [
        f"# Ansible playbook generated by c10kplan {__version__}: a storm of {plan.connections:,} connections",
        f"# on {plan.target} from every host of the inventory group {plan.group!r}, merged on the controller.",
        "# Run: ansible-playbook -i INVENTORY storm.yml [-f FORKS] [-e c10kplan_storm_group=GROUP]",
        "# Host I of K (inventory order) opens its share of the connections; all start at one time.",
        "# Inventory variables (all optional):",
        *(f"#   {name}: {meaning}" for name, meaning in INVENTORY_VARS),
        "- name: Prepare every load host (install c10kplan, check it for its share)",
        f"  hosts: \"{{{{ {group} }}}}\"",
        "  gather_facts: false",
        "  any_errors_fatal: true",
        *host_vars,
        "  tasks:",
        "    - name: Install c10kplan into its virtualenv",
        "      ansible.builtin.pip:",
        "        name: \"{{ storm_package }}\"",
        "        virtualenv: \"{{ storm_venv }}\"",
        "        virtualenv_command: \"{{ ansible_python_interpreter | default('python3') }} -m venv\"",
        "        virtualenv_site_packages: \"{{ c10kplan_venv_site_packages | default(false) | bool }}\"",
        "        extra_args: \"{{ c10kplan_pip_extra_args | default(omit) }}\"",
        "    - name: Check this host for its share of the connections (role client; FAIL stops the play)",
        "      ansible.builtin.command:",
        "        argv: >-",
        "          {{ storm_cmd + ['check', '--connections', storm_share_connections | string,",
        "          '--role', 'client'] + check_options }}",
        "      changed_when: false",
        "    - name: Make the result directory on the host",
        "      ansible.builtin.file:",
        "        path: \"{{ storm_remote_dir }}\"",
        "        state: directory",
        "        mode: \"0755\"",
        "",
        "- name: Agree on one start time, once every host passed its check",
        "  hosts: localhost",
        "  connection: local",
        "  gather_facts: false",
        "  tasks:",
        "    - name: Start time for every host",
        "      ansible.builtin.set_fact:",
        # now() is naive local time and .timestamp() reads it as local: the Unix time, whatever
        # the controller's time zone (now(utc=true) is naive UTC, which .timestamp() would misread).
        f"        storm_start_at: \"{{{{ (now().timestamp() + {plan.start_delay:g}) | round(3) }}}}\"",
        "",
        "- name: Storm from every load host at once",
        f"  hosts: \"{{{{ {group} }}}}\"",
        "  gather_facts: false",
        "  any_errors_fatal: true",
        *host_vars,
        "    storm_start_at: \"{{ hostvars['localhost'].storm_start_at }}\"",
        "  tasks:",
        "    - name: Start this host's share of the storm",
        "      ansible.builtin.command:",
        "        argv: >-",
        "          {{ storm_cmd + ['storm', storm_target, '--connections', storm_connections | string,",
        "          '--share', storm_index ~ '/' ~ storm_count, '--start-at', storm_start_at | string,",
        "          '--source-ips', storm_source_ips, '--json', '--no-progress'] + storm_options }}",
        f"      async: {plan.job_seconds}",
        "      poll: 0",
        "      register: storm_job",
        "      changed_when: false",
        "    - name: Wait for the storm to finish",
        "      ansible.builtin.async_status:",
        "        jid: \"{{ storm_job.ansible_job_id }}\"",
        "      register: storm_run",
        "      until: storm_run.finished",
        f"      retries: {retries}",
        f"      delay: {POLL_DELAY}",
        "      # exit 1 is a storm that ran and failed its verdict: its result still goes to merge",
        "      failed_when: storm_run.finished and (storm_run.rc | default(0)) not in [0, 1]",
        "    - name: Save the result on the host",
        "      ansible.builtin.copy:",
        "        content: \"{{ storm_run.stdout }}\\n\"",
        "        dest: \"{{ storm_result }}\"",
        "        mode: \"0644\"",
        "    - name: Fetch the result to the controller",
        "      ansible.builtin.fetch:",
        "        src: \"{{ storm_result }}\"",
        "        dest: \"{{ storm_results_dir }}/\"",
        "        flat: true",
        "",
        "- name: Merge the storm results on the controller",
        "  hosts: localhost",
        "  connection: local",
        "  gather_facts: false",
        "  vars:",
        "    storm_results_dir: \"{{ c10kplan_results_dir | default('./c10kplan-storm-results') }}\"",
        f"    storm_hosts: \"{{{{ groups[{group}] }}}}\"",
        "    storm_files: \"{{ storm_hosts | map('regex_replace', '^(.*)$', storm_results_dir ~ '/storm-\\\\1.json') | list }}\"",
        "  tasks:",
        "    - name: Merge with c10kplan merge",
        "      ansible.builtin.command:",
        "        argv: \"{{ (c10kplan_merge_cmd | default(['c10kplan'])) + ['merge', '--json'] + storm_files }}\"",
        "      register: storm_merged",
        "      changed_when: false",
        "      failed_when: storm_merged.rc not in [0, 1]",
        "    - name: Save the merged result",
        "      ansible.builtin.copy:",
        "        content: \"{{ storm_merged.stdout }}\\n\"",
        "        dest: \"{{ storm_results_dir }}/merged.json\"",
        "        mode: \"0644\"",
        "    - name: Verdict of the merged storm",
        "      ansible.builtin.assert:",
        "        that: storm_merged.rc == 0",
        "        success_msg: \"PASS: {{ (storm_merged.stdout | from_json).storm.held }} connections held from {{ storm_hosts | length }} hosts\"",
        "        fail_msg: \"FAIL: {{ (storm_merged.stdout | from_json).problems | join('; ') }}\"",
    ]
    return "\n".join(out) + "\n"
