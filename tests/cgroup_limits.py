"""Run a child process inside a fresh memory cgroup (v1 or v2) and read what it cost.

Shared by tests/test_cgroup_fit.py and bench/memory_limits.py. The child joins the cgroup
before it imports anything (a shell writes its own pid to ``cgroup.procs`` and then execs
Python), prints one JSON line when its imports are done and waits for a line on stdin, so
the limit can be set from what the idle process already uses; then it runs
``load_services`` and answers once with each model (tests/cgroup_child.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).resolve().parent / "cgroup_child.py"


def _memory_mount() -> tuple[int, Path, str] | None:
    """(version, folder to create children in, this process's cgroup path) or ``None``."""
    from vqa_core.memory import _levels, _memory_mounts, _own_cgroup_paths

    paths = _own_cgroup_paths(Path("/"))
    for mount in _memory_mounts(Path("/")):
        path = paths.get(mount.version)
        if path is None:
            continue
        levels = _levels(Path("/"), mount, path)
        if not levels:
            continue
        if mount.version == 1 and (levels[0] / "memory.limit_in_bytes").is_file():
            return 1, levels[0], path
        if mount.version == 2:
            # v2 forbids processes in a cgroup whose children use controllers, so children go
            # under the root of the mount, where the memory controller must be delegated.
            top = levels[-1]
            controllers = (top / "cgroup.subtree_control").read_text().split()
            if "memory" in controllers:
                return 2, top, path
    return None


def unavailable_reason() -> str | None:
    """Why no memory cgroup can be made here, or ``None`` when one can."""
    if sys.platform != "linux":
        return "memory cgroups are Linux only"
    if os.geteuid() != 0:
        return "creating a memory cgroup needs root"
    try:
        found = _memory_mount()
    except OSError as err:
        return f"the cgroup hierarchy could not be read: {err}"
    if found is None:
        return "no writable cgroup v1 memory hierarchy or v2 memory controller is mounted"
    probe = found[1] / f"vqa-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError as err:
        return f"cannot create a cgroup under {found[1]}: {err}"
    return None


class MemoryCgroup:
    """A child memory cgroup that lives for a ``with`` block."""

    def __init__(self, name: str = "vqa-test") -> None:
        found = _memory_mount()
        if found is None:
            raise RuntimeError(unavailable_reason() or "no memory cgroup")
        self.version, parent, _ = found
        self.path = parent / f"{name}-{os.getpid()}-{time.monotonic_ns()}"

    def __enter__(self) -> MemoryCgroup:
        self.path.mkdir()
        return self

    def __exit__(self, *exc) -> None:
        for _ in range(50):  # the child's exit is asynchronous to the cgroup's emptying
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)

    def _file(self, v1: str, v2: str) -> Path:
        return self.path / (v1 if self.version == 1 else v2)

    def set_limit(self, limit: int) -> None:
        self._file("memory.limit_in_bytes", "memory.max").write_text(str(int(limit)))

    def _stat(self) -> dict[str, int]:
        found = {}
        for line in (self.path / "memory.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            found[key] = int(value)
        return found

    def usage(self) -> int:
        """Bytes in use, without page cache nobody maps (as vqa_core.memory counts it)."""
        usage = int(self._file("memory.usage_in_bytes", "memory.current").read_text())
        stat = self._stat()
        prefix = "total_" if self.version == 1 else ""
        mapped_key = "total_mapped_file" if self.version == 1 else "file_mapped"
        cache = stat.get(prefix + "inactive_file", 0) + stat.get(prefix + "active_file", 0)
        return usage - max(0, cache - stat.get(mapped_key, 0))

    def peak(self) -> int:
        """The cgroup's high-water mark, page cache included (it fills up to the limit)."""
        return int(self._file("memory.max_usage_in_bytes", "memory.peak").read_text())

    def oom_kills(self) -> int:
        text = self._file("memory.oom_control", "memory.events").read_text()
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def failcnt(self) -> int | None:
        """v1 only: how often usage hit the limit (page cache reclaim counts too)."""
        if self.version != 1:
            return None
        return int((self.path / "memory.failcnt").read_text())

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` started inside this cgroup before it runs a single line of Python."""
        procs = self.path / "cgroup.procs"
        return ["sh", "-c", f'echo $$ > "{procs}" && exec "$@"', "sh", *argv]


def run_app_models(
    hf_home: Path,
    budget: int | None,
    *,
    repeats: int = 1,
    dtype: str = "auto",
    quantization: str = "auto",
    whole: bool = False,
    timeout: float = 900,
    extra_env: dict | None = None,
) -> dict:
    """``load_services`` + one answer per model in a cgroup limited to idle use + ``budget``.

    ``whole=True`` makes ``budget`` the whole limit, the idle interpreter included (a
    machine's "8 GB").
    Returns the child's JSON report plus ``returncode``, ``limit``, ``idle``, ``cgroup_peak``,
    ``oom_kills`` and ``failcnt``. ``budget=None`` runs without a limit.
    """
    env = {
        **os.environ,
        "HF_HOME": str(hf_home),
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "TRANSFORMERS_VERBOSITY": "error",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "PYTHONPATH": str(ROOT),
        **(extra_env or {}),
    }
    for name in ("VQA_VILT_MODEL", "VQA_BLIP2_MODEL"):
        env.pop(name, None)
    with MemoryCgroup() as cgroup:
        child = subprocess.Popen(
            cgroup.command([sys.executable, str(CHILD), str(repeats), dtype, quantization]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        try:
            first = child.stdout.readline()
            if not first.strip():
                child.wait(timeout=60)
                raise RuntimeError(f"the child failed before loading: {child.stderr.read()}")
            idle = cgroup.usage()
            limit = None if budget is None else budget + (0 if whole else idle)
            if limit is not None:
                cgroup.set_limit(limit)
            child.stdin.write("go\n")
            child.stdin.flush()
            out, err = child.communicate(timeout=timeout)
        except BaseException:
            child.kill()
            child.wait()
            raise
        report = {}
        for line in out.splitlines():
            if line.startswith("{"):
                report = json.loads(line)
        report.update(
            returncode=child.returncode,
            stderr_tail=err[-2000:],
            idle=idle,
            limit=limit,
            cgroup_peak=cgroup.peak(),
            oom_kills=cgroup.oom_kills(),
            failcnt=cgroup.failcnt(),
        )
    return report
