"""Where a benchmark ran: CPU, cores, memory (from /proc) and the git commit."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Machine:
    cpu: str
    cores: int
    memory_gib: float
    python: str
    commit: str

    def describe(self) -> str:
        return (
            f"{self.cpu}, {self.cores} cores, {self.memory_gib:.0f} GiB RAM, Python {self.python}"
        )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()


def _commit(repo: Path) -> str:
    try:
        head = _git(repo, "rev-parse", "--short", "HEAD")
        # The figures file itself is not code: earlier runs appended to it.
        dirty = _git(
            repo, "status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs/*.md"
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' (+ uncommitted changes)' if dirty else ''}"


def machine_info(repo: Path) -> Machine:
    return Machine(
        cpu=_cpu_model(),
        cores=os.cpu_count() or 0,
        memory_gib=_memory_gib(),
        python=platform.python_version(),
        commit=_commit(repo),
    )


def process_cpu_seconds(pid: int, *, with_children: bool = False) -> float:
    """User + system CPU seconds of a live process (and its direct children)."""
    ticks = os.sysconf("SC_CLK_TCK")
    pids = _family(pid) if with_children else [pid]
    total = 0.0
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def find_pid(needle: str) -> int | None:
    """The process whose command line contains ``needle`` (a config path we wrote)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline:
            return int(entry.name)
    return None


def _family(pid: int) -> list[int]:
    """``pid`` and its direct children (ingest's worker processes)."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                pids.append(int(entry.name))
    return pids


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def reset_peak_rss(pid: int) -> bool:
    """Restart the kernel's peak-RSS count of a process and its children (Linux 4.0+)."""
    done = True
    for one in _family(pid):
        try:
            Path(f"/proc/{one}/clear_refs").write_text("5")
        except OSError:
            done = False
    return done


def peak_rss_bytes(pid: int) -> int:
    """Sum over a process and its children of each one's peak RSS (VmHWM) since the last
    reset: an upper bound of their combined peak."""
    return sum(_status_kib(one, "VmHWM:") for one in _family(pid)) * 1024


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its children now."""
    return sum(_status_kib(one, "VmRSS:") for one in _family(pid)) * 1024
