"""collect_facts on captured and hand-made trees; snapshots round-trip; bad sources are
BadInput / HostFactsError (exit 2)."""

from __future__ import annotations

import json

import pytest

from c10kplan.errors import BadInput, HostFactsError
from c10kplan.host.inspect import HostFacts, collect_facts, facts_for, load_host_facts
from c10kplan.host.procfs import ProcFS

TREES = ["live", "hard1024", "conntrack_small", "container", "garbage_rmem", "course_notes", "cap_sys_resource"]


def facts(fixtures_dir, name):
    return collect_facts(ProcFS(fixtures_dir / "proc" / name))


def test_live_capture_has_every_fact_with_units(fixtures_dir):
    f = facts(fixtures_dir, "live")
    assert (f.nofile_soft, f.nofile_hard, f.can_raise_hard_limit) == (20000, 20000, False)
    assert f.tcp_wmem_bytes == (4096, 16384, 4194304)
    assert f.tcp_mem_pages is not None and len(f.tcp_mem_pages) == 3
    assert f.page_size_bytes == 4096 and f.cpu_count == 2
    assert f.ip_local_port_range == (32768, 60999) and f.reserved_ports_in_range == 0
    assert f.mem_available_bytes is not None and f.mem_available_bytes > 1 << 30
    assert f.conntrack_loaded and f.nf_conntrack_max == 262144
    # eth0 reports -1, the ifb devices refuse the read: all unknown, said so in a note
    assert f.link_speeds_mbit == {"eth0": None, "ifb0": None, "ifb1": None}
    assert f.link_speed_mbit is None
    assert any("link speed" in n for n in f.notes)


def test_hard_limit_1024_and_capability(fixtures_dir):
    assert facts(fixtures_dir, "hard1024").nofile_hard == 1024
    assert facts(fixtures_dir, "cap_sys_resource").can_raise_hard_limit is True


def test_container_tree_leaves_hidden_facts_unknown_with_notes(fixtures_dir):
    f = facts(fixtures_dir, "container")
    assert f.somaxconn == 4096 and f.nofile_hard == 1048576 and f.can_raise_hard_limit is False
    for field in ("file_max", "nr_open", "tcp_rmem_bytes", "tcp_mem_pages", "ip_local_port_range",
                  "page_size_bytes", "cpu_count"):
        assert getattr(f, field) is None, field
    assert not f.conntrack_loaded and f.link_speeds_mbit == {}
    text = "\n".join(f.notes)
    assert "fs.file-max: unknown" in text and "net.ipv4.tcp_rmem: unknown" in text


def test_garbage_in_tcp_rmem_is_unknown_not_an_error(fixtures_dir):
    f = facts(fixtures_dir, "garbage_rmem")
    assert f.tcp_rmem_bytes is None and f.tcp_wmem_bytes is None and f.file_max is None
    assert any("tcp_rmem: unknown" in n and "malformed" in n for n in f.notes)
    assert f.somaxconn is not None  # the rest of the tree still reads


def test_empty_root_gives_all_unknown(tmp_path):
    f = collect_facts(ProcFS(tmp_path))
    assert f.nofile_hard is None and f.mem_available_bytes is None and len(f.notes) > 15


@pytest.mark.parametrize("name", TREES)
def test_snapshot_json_round_trips_and_validates(fixtures_dir, name, tmp_path):
    f = facts(fixtures_dir, name)
    # collect_facts skips validation for speed: the result must be what validation accepts.
    assert HostFacts.model_validate(f.model_dump()) == f
    path = tmp_path / "snap.json"
    path.write_text(f.model_dump_json())
    assert load_host_facts(str(path)) == f


def test_pid_reads_that_process_limits(tmp_path):
    (tmp_path / "proc" / "4242").mkdir(parents=True)
    (tmp_path / "proc" / "4242" / "limits").write_text("Max open files  512  4096  files\n")
    f = facts_for(str(tmp_path), 4242)
    assert (f.pid, f.nofile_soft, f.nofile_hard) == (4242, 512, 4096)


def test_facts_for_rejects_bad_sources(tmp_path):
    with pytest.raises(BadInput, match="no such directory"):
        facts_for(str(tmp_path / "missing"))
    with pytest.raises(BadInput, match="--pid 999999999"):
        facts_for(str(tmp_path), 999999999)
    with pytest.raises(BadInput, match="cannot be combined"):
        facts_for(str(tmp_path), None, "snap.json")


def test_malformed_host_facts_file_is_host_facts_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"nofile_hard": "lots"}))
    with pytest.raises(HostFactsError, match="nofile_hard"):
        load_host_facts(str(bad))
    bad.write_text("{not json")
    with pytest.raises(HostFactsError, match="--host-facts"):
        load_host_facts(str(bad))
    with pytest.raises(HostFactsError, match="No such file"):
        load_host_facts(str(tmp_path / "missing.json"))
