"""The memory reader on fixture trees: cgroup v1, cgroup v2, nested limits, no cgroup."""

from __future__ import annotations

from pathlib import Path

import pytest

from vqa_core.memory import GIB, format_gb, read_cgroup_memory, read_memory

MEMINFO = "MemTotal:       24683584 kB\nMemFree:        1000000 kB\nMemAvailable:   20971520 kB\n"
V1_MOUNTS = (
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
)
V2_MOUNTS = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def v1_tree(root: Path, limit: str, usage: int, inactive: int = 0) -> None:
    write(root, "proc/meminfo", MEMINFO)
    write(root, "proc/self/mountinfo", V1_MOUNTS)
    # The hybrid layout of this project's machine: memory on v1, an empty v2 beside it.
    write(root, "proc/self/cgroup", "4:memory:/kiosk/app\n1:cpu:/\n0::/\n")
    (root / "sys/fs/cgroup/unified").mkdir(parents=True)
    write(root, "sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n")
    write(root, "sys/fs/cgroup/memory/kiosk/memory.limit_in_bytes", "9223372036854771712\n")
    app = "sys/fs/cgroup/memory/kiosk/app/"
    write(root, app + "memory.limit_in_bytes", limit)
    write(root, app + "memory.usage_in_bytes", str(usage))
    stat = f"total_inactive_file {inactive}\ntotal_active_file {GIB}\ntotal_mapped_file {GIB}\n"
    write(root, app + "memory.stat", stat)


def test_v1_limit_of_the_own_cgroup(tmp_path):
    v1_tree(tmp_path, str(8 * GIB), usage=3 * GIB, inactive=1 * GIB)
    cgroup = read_cgroup_memory(tmp_path)
    assert cgroup is not None and cgroup.version == 1 and cgroup.path == "/kiosk/app"
    assert cgroup.limit == 8 * GIB
    # Page cache nobody maps is reclaimable: 3 GB used minus 1 GB of it leaves 6 GB free;
    # the mapped 1 GB (weights served from their file) counts as used.
    assert cgroup.free == 6 * GIB
    report = read_memory(tmp_path)
    assert report.host_available == 20 * GIB
    assert report.free == 6 * GIB and report.limited_by_cgroup
    assert report.describe() == "this container has 6.0 GB free of its 8.0 GB limit"


def test_v1_without_a_limit_falls_back_to_the_host(tmp_path):
    v1_tree(tmp_path, "9223372036854771712", usage=3 * GIB)
    report = read_memory(tmp_path)
    assert report.cgroup is not None and report.cgroup.limit is None
    assert report.free == 20 * GIB and not report.limited_by_cgroup
    assert report.describe() == "this machine has 20.0 GB free"


def test_v1_a_parent_limit_binds_the_child(tmp_path):
    v1_tree(tmp_path, "9223372036854771712", usage=1 * GIB)
    parent = "sys/fs/cgroup/memory/kiosk/"
    write(tmp_path, parent + "memory.limit_in_bytes", str(4 * GIB))
    write(tmp_path, parent + "memory.usage_in_bytes", str(3 * GIB))
    cgroup = read_cgroup_memory(tmp_path)
    assert cgroup is not None and cgroup.limit == 4 * GIB and cgroup.free == 1 * GIB


def v2_tree(root: Path, path: str, limit: str, current: int, inactive: int = 0) -> None:
    write(root, "proc/meminfo", MEMINFO)
    write(root, "proc/self/mountinfo", V2_MOUNTS)
    write(root, "proc/self/cgroup", f"0::{path}\n")
    folder = "sys/fs/cgroup" + path.rstrip("/") + "/"
    write(root, folder + "memory.max", limit)
    write(root, folder + "memory.current", str(current))
    stat = f"anon 1\ninactive_file {inactive}\nactive_file 7\nfile_mapped 7\n"
    write(root, folder + "memory.stat", stat)


def test_v2_memory_max(tmp_path):
    v2_tree(tmp_path, "/system.slice/kiosk.service", str(16 * GIB), 5 * GIB, inactive=GIB)
    cgroup = read_cgroup_memory(tmp_path)
    assert cgroup is not None and cgroup.version == 2
    assert cgroup.limit == 16 * GIB and cgroup.free == 12 * GIB
    assert read_memory(tmp_path).free == 12 * GIB


def test_v2_max_means_no_limit(tmp_path):
    v2_tree(tmp_path, "/user.slice", "max\n", 5 * GIB)
    report = read_memory(tmp_path)
    assert report.cgroup is not None and report.cgroup.limit is None
    assert report.free == 20 * GIB


def test_v2_inside_a_cgroup_namespace(tmp_path):
    # A container with its own cgroup namespace sees itself as "/" at the mount point.
    v2_tree(tmp_path, "/", str(2 * GIB), GIB // 2)
    cgroup = read_cgroup_memory(tmp_path)
    assert cgroup is not None and cgroup.limit == 2 * GIB and cgroup.free == GIB + GIB // 2


def test_v2_bind_mounted_own_cgroup(tmp_path):
    # Docker without a cgroup namespace: the mount's root is the container's own cgroup.
    write(tmp_path, "proc/meminfo", MEMINFO)
    write(
        tmp_path,
        "proc/self/mountinfo",
        "30 23 0:26 /docker/abc /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n",
    )
    write(tmp_path, "proc/self/cgroup", "0::/docker/abc\n")
    write(tmp_path, "sys/fs/cgroup/memory.max", str(3 * GIB))
    write(tmp_path, "sys/fs/cgroup/memory.current", str(GIB))
    cgroup = read_cgroup_memory(tmp_path)
    assert cgroup is not None and cgroup.limit == 3 * GIB and cgroup.free == 2 * GIB


def test_no_cgroup_at_all(tmp_path):
    write(tmp_path, "proc/meminfo", MEMINFO)
    write(tmp_path, "proc/self/mountinfo", "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n")
    write(tmp_path, "proc/self/cgroup", "")
    report = read_memory(tmp_path)
    assert report.cgroup is None and report.free == 20 * GIB
    assert report.describe() == "this machine has 20.0 GB free"


def test_unreadable_proc_says_so(tmp_path):
    report = read_memory(tmp_path)
    assert report.free is None
    assert "could not be read" in report.describe()


@pytest.mark.parametrize(("size", "text"), [(int(4.1 * GIB), "4.1 GB"), (GIB // 2, "0.5 GB")])
def test_format_gb(size, text):
    assert format_gb(size) == text


def test_this_process_reads_something_sane():
    report = read_memory()
    assert report.free is not None and 0 < report.free <= (report.host_total or report.free)
