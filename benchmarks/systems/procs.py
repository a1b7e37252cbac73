"""Processes seen through /proc: the tree under a process, its memory, and killing it.

Rule: the harness kills only what it started, by process id. It makes itself the child
subreaper (Linux ``PR_SET_CHILD_SUBREAPER``) so a grandchild whose parent died (a worker whose
peer was killed, a daemon Ray double-forked) is re-parented to the harness instead of init, and
``kill_descendants`` at exit still finds it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
PROC = Path("/proc")


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux only); whether it worked."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def parents() -> dict[int, int]:
    """Every visible process id mapped to its parent's id."""
    table: dict[int, int] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # The command name (field 2) is in parentheses and may hold spaces: split after it.
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = int(fields[1])
    return table


def children(pid: int) -> set[int]:
    return {child for child, parent in parents().items() if parent == pid}


def descendants(roots: Iterable[int]) -> set[int]:
    """``roots`` (those still alive) and every process below them."""
    table = parents()
    below: dict[int, list[int]] = {}
    for child, parent in table.items():
        below.setdefault(parent, []).append(child)
    found: set[int] = set()
    stack = [pid for pid in roots if pid in table]
    while stack:
        pid = stack.pop()
        if pid not in found:
            found.add(pid)
            stack.extend(below.get(pid, ()))
    return found


@dataclass(frozen=True)
class Memory:
    rss_mb: float  # resident set, shared pages counted in every process that maps them
    pss_mb: float  # proportional set: shared pages split between the processes sharing them
    processes: int


def memory_of(pids: Iterable[int]) -> Memory:
    """Summed RSS and PSS of ``pids`` (processes that vanished meanwhile are left out)."""
    rss_kb = pss_kb = count = 0
    for pid in pids:
        try:
            rollup = (PROC / str(pid) / "smaps_rollup").read_text()
        except OSError:
            continue
        values = {}
        for line in rollup.splitlines()[1:]:
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                values[key] = int(parts[0])
        rss_kb += values.get("Rss", 0)
        pss_kb += values.get("Pss", 0)
        count += 1
    return Memory(rss_kb / 1024, pss_kb / 1024, count)


def maps_mention(pid: int, word: str) -> bool | None:
    """Whether a file mapped into ``pid`` has ``word`` in its path (None if unreadable)."""
    try:
        return word in (PROC / str(pid) / "maps").read_text()
    except OSError:
        return None


def kill_pids(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def wait_or_kill(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Wait up to ``timeout_s`` for ``proc`` to exit, then SIGKILL it and everything below it."""
    try:
        proc.wait(max(timeout_s, 0.0))
    except subprocess.TimeoutExpired:
        kill_pids(descendants([proc.pid]))
        proc.wait(5)


def command_line(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:120]


def kill_descendants() -> list[str]:
    """SIGKILL every process below this one, then reap the orphans it adopted; what was killed.

    multiprocessing's resource tracker is spared: it lives until this process exits, by design,
    and leaves by itself then (killed earlier, the exit's clean-up would start another)."""
    below = descendants([os.getpid()]) - {os.getpid()}
    lines = {pid: command_line(pid) for pid in below}
    doomed = [pid for pid, line in lines.items() if "multiprocessing.resource_tracker" not in line]
    kill_pids(doomed)
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    return [f"{pid} {lines[pid]}" for pid in sorted(doomed) if lines[pid]]


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()
