"""How much memory this process may still use: its container's limit, the host, the GPU.

A process in a container sees the host's ``MemAvailable`` but is killed at its memory
cgroup's limit, so both are read: the cgroup this process belongs to, as
``/proc/self/cgroup`` names it, found under the mount point ``/proc/self/mountinfo``
gives for that hierarchy (cgroup v2's ``memory.max`` / ``memory.current``, or v1's
``memory.limit_in_bytes`` / ``memory.usage_in_bytes``), and every ancestor up to the mount,
since a parent's limit binds its children too. Page cache no process maps (a checkpoint
file read while loading) is not counted as used: the kernel drops it before it kills anyone.

Every path is read under ``root`` so tests can point the reader at fixture files.
Sizes are bytes; :func:`format_gb` writes them the way people read them (GiB, "GB").
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from .sentences import Sentence

__all__ = [
    "CgroupMemory",
    "MemoryReport",
    "read_cgroup_memory",
    "read_host_memory",
    "read_memory",
    "read_cuda_memory",
    "format_gb",
    "frees_returned_while_loading",
]

logger = logging.getLogger(__name__)

GIB = 1024**3
# cgroup v1 writes "no limit" as the largest page-aligned 63-bit value; anything this large
# is no limit in practice.
_UNLIMITED = 1 << 60


def format_gb(size: int | float) -> str:
    """``4.1 GB`` (GiB, one decimal): how task managers and ``free -h`` show memory."""
    return f"{size / GIB:.1f} GB"


@dataclass(frozen=True)
class CgroupMemory:
    """The memory cgroup this process is in, and the tightest limit on its way to the root."""

    version: int
    path: str
    limit: int | None
    free: int | None

    def describe(self) -> str:
        if self.limit is None:
            return f"cgroup v{self.version} {self.path} (no memory limit)"
        return (
            f"cgroup v{self.version} {self.path}: limit {format_gb(self.limit)}, "
            f"{format_gb(self.free or 0)} free"
        )


@dataclass(frozen=True)
class MemoryReport:
    """What the process may still allocate in host memory: the smaller of host and cgroup."""

    host_available: int | None
    host_total: int | None
    cgroup: CgroupMemory | None = None

    @property
    def free(self) -> int | None:
        candidates = [self.host_available]
        if self.cgroup is not None and self.cgroup.free is not None:
            candidates.append(self.cgroup.free)
        known = [c for c in candidates if c is not None]
        return min(known) if known else None

    @property
    def limited_by_cgroup(self) -> bool:
        return (
            self.cgroup is not None
            and self.cgroup.free is not None
            and (self.host_available is None or self.cgroup.free < self.host_available)
        )

    def describe(self) -> str:
        """``this machine has 2.3 GB free`` or ``this container has 2.3 GB free of its 8.0 GB``."""
        return str(self.where())

    def where(self) -> Sentence:
        """:meth:`describe` as a :class:`~vqa_core.sentences.Sentence` a page can reword."""
        free = self.free
        if free is None:
            return Sentence.of("memory_unread", "this machine's free memory could not be read")
        if self.limited_by_cgroup and self.cgroup is not None and self.cgroup.limit is not None:
            return Sentence.of(
                "memory_container",
                f"this container has {format_gb(free)} free of its "
                f"{format_gb(self.cgroup.limit)} limit",
                free=format_gb(free),
                limit=format_gb(self.cgroup.limit),
            )
        return Sentence.of(
            "memory_machine", f"this machine has {format_gb(free)} free", free=format_gb(free)
        )


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return None if value >= _UNLIMITED else value


def _read_stat(path: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            found[key] = int(value)
    return found


def read_host_memory(root: Path = Path("/")) -> tuple[int | None, int | None]:
    """``(MemAvailable, MemTotal)`` from ``/proc/meminfo`` in bytes; ``None`` where unreadable."""
    stat: dict[str, int] = {}
    try:
        lines = (root / "proc/meminfo").read_text().splitlines()
    except OSError:
        return None, None
    for line in lines:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            stat[key] = int(parts[0]) * 1024  # the file says kB and means KiB
    return stat.get("MemAvailable"), stat.get("MemTotal")


@dataclass(frozen=True)
class _Mount:
    mount_root: str
    mount_point: str
    version: int


def _memory_mounts(root: Path) -> list[_Mount]:
    """cgroup mounts that can hold memory limits, v2 first (it is the one in use when present)."""
    try:
        lines = (root / "proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    mounts: list[_Mount] = []
    for line in lines:
        head, sep, tail = line.partition(" - ")
        fields, extra = head.split(), tail.split()
        if not sep or len(fields) < 5 or len(extra) < 3:
            continue
        fstype, super_options = extra[0], extra[2].split(",")
        if fstype == "cgroup2":
            mounts.append(_Mount(fields[3], fields[4], 2))
        elif fstype == "cgroup" and "memory" in super_options:
            mounts.append(_Mount(fields[3], fields[4], 1))
    return sorted(mounts, key=lambda mount: -mount.version)


def _own_cgroup_paths(root: Path) -> dict[int, str]:
    """This process's cgroup path per version: v2's ``0::/path``, v1's ``N:...memory...:/path``."""
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return {}
    paths: dict[int, str] = {}
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            paths[2] = path
        elif "memory" in controllers.split(","):
            paths[1] = path
    return paths


def _levels(root: Path, mount: _Mount, cgroup_path: str) -> list[Path]:
    """The cgroup's folder and its ancestors up to the mount point, innermost first."""
    mount_point = root / mount.mount_point.lstrip("/")
    relative = cgroup_path
    # Inside a cgroup namespace or a bind mount the mount's root is part of the path.
    if mount.mount_root != "/" and relative.startswith(mount.mount_root):
        relative = relative[len(mount.mount_root) :]
    parts = [p for p in relative.split("/") if p]
    levels = [mount_point.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]
    return [level for level in levels if level.is_dir()]


def _level_memory(level: Path, version: int) -> tuple[int | None, int | None]:
    """``(limit, free)`` of one cgroup folder; free = limit - (usage - inactive page cache)."""
    if version == 2:
        limit = _read_int(level / "memory.max")
        usage = _read_int(level / "memory.current")
        stat = _read_stat(level / "memory.stat")
        cache = stat.get("inactive_file", 0) + stat.get("active_file", 0)
        mapped = stat.get("file_mapped", 0)
    else:
        limit = _read_int(level / "memory.limit_in_bytes")
        usage = _read_int(level / "memory.usage_in_bytes")
        stat = _read_stat(level / "memory.stat")
        cache = stat.get("total_inactive_file", 0) + stat.get("total_active_file", 0)
        mapped = stat.get("total_mapped_file", 0)
    if limit is None:
        return None, None
    # Page cache nobody maps (a checkpoint file read while loading) is dropped under
    # pressure; mapped file pages may be weights served straight from the file, so they stay.
    reclaimable = max(0, cache - mapped)
    used = max(0, (usage or 0) - reclaimable)
    return limit, max(0, limit - used)


def read_cgroup_memory(root: Path = Path("/")) -> CgroupMemory | None:
    """The memory cgroup of this process, or ``None`` where no memory hierarchy is mounted."""
    paths = _own_cgroup_paths(root)
    for mount in _memory_mounts(root):
        path = paths.get(mount.version)
        if path is None:
            continue
        levels = _levels(root, mount, path)
        control = "memory.max" if mount.version == 2 else "memory.limit_in_bytes"
        # A v2 mount without the memory controller (hybrid systems) has no memory.max.
        if not any((level / control).is_file() for level in levels):
            continue
        limit, free = None, None
        for level in levels:
            level_limit, level_free = _level_memory(level, mount.version)
            if level_free is not None and (free is None or level_free < free):
                limit, free = level_limit, level_free
        return CgroupMemory(mount.version, path, limit, free)
    return None


def read_memory(root: Path = Path("/")) -> MemoryReport:
    """Host and cgroup memory as the process sees them right now."""
    available, total = read_host_memory(root)
    report = MemoryReport(available, total, read_cgroup_memory(root))
    logger.debug("memory: %s (%s)", report.describe(), report.cgroup)
    return report


# While a checkpoint is quantized as it loads, and afterwards (see frees_returned_while_loading).
_LOADING_MMAP_THRESHOLD = 1024**2
_SERVING_MMAP_THRESHOLD = 32 * 1024**2
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)


def _set_mmap_threshold(size: int) -> bool:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, size))


@contextlib.contextmanager
def frees_returned_while_loading() -> Iterator[bool]:
    """While loading, make glibc give every freed block of 1 MiB or more back to the kernel.

    Quantizing a checkpoint as it loads allocates and frees a float copy of each weight
    next to the int8 result it keeps. glibc raises its mmap threshold after such frees
    (up to 32 MiB), so the copies land on the heap, and the small int8 blocks kept between
    them stop it shrinking: measured on BLIP-2 OPT-2.7B, 5.1 GB resident after an int8 load
    instead of 3.6 GB, and 3.4 GB more after the first answers. A 1 MiB threshold (what
    ``MALLOC_MMAP_THRESHOLD_=1048576`` sets) serves large blocks from their own mappings,
    which are returned on free.

    Afterwards the threshold is fixed at 32 MiB, glibc's own ceiling: left at 1 MiB, every
    activation of a MiB or more would be a fresh mapping, faulted in and zeroed on each
    call, which made the image encoder's int8 layers slower than their matmuls (one
    1408 -> 6144 layer over 257 patches: 4.4 ms for the int8 product alone, 1.8 ms at
    32 MiB). The loaded weights are not moved, and resident memory stayed flat over
    repeated answers. Yields ``False`` where the C library is not glibc (musl, macOS) and
    nothing is changed.
    """
    changed = _set_mmap_threshold(_LOADING_MMAP_THRESHOLD)
    try:
        yield changed
    finally:
        if changed:
            _set_mmap_threshold(_SERVING_MMAP_THRESHOLD)


def read_cuda_memory(device: torch.device | str = "cuda") -> tuple[int, int]:
    """``(free, total)`` bytes on a CUDA device, as the driver reports them."""
    free, total = torch.cuda.mem_get_info(torch.device(device))
    return int(free), int(total)
