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
    pids = [pid]
    if with_children:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == pid:
                    pids.append(int(entry.name))
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
