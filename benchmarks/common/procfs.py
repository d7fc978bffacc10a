"""CPU time, memory and children of the server's processes, read from /proc."""

from __future__ import annotations

import os
from pathlib import Path


def _stat_fields(pid: int) -> list[str]:
    """Fields of ``/proc/<pid>/stat`` after the command name; [] once the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    # The command name is parenthesised and may hold spaces, so split after its last ")".
    return stat[stat.rindex(")") + 2 :].split()


def child_pids(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat_fields(int(stat.parent.name))
        if fields and int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (not of its reaped children)."""
    fields = _stat_fields(pid)
    if not fields:
        return 0.0
    # utime and stime are fields 14 and 15 of the whole line.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def workers_cpu(master: int) -> float:
    """CPU time of the gunicorn workers, the children of ``master``."""
    return sum(cpu_seconds(pid) for pid in child_pids(master))


def gunicorn_cpu(master: int) -> float:
    """CPU time of the gunicorn master and its workers."""
    return cpu_seconds(master) + workers_cpu(master)


def status_kib(pid: int, *names: str) -> dict[str, int]:
    """``/proc/<pid>/status`` memory lines (``VmRSS``, ``VmHWM`` …) in KiB; {} once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    values = {}
    for line in status.splitlines():
        name, _, rest = line.partition(":")
        if name in names:
            values[name] = int(rest.split()[0])
    return values


def peak_rss_kib(pid: int) -> int:
    return status_kib(pid, "VmHWM").get("VmHWM", 0)


def workers_peak_rss_kib(master: int) -> list[int]:
    """VmHWM of every gunicorn worker, largest first."""
    return sorted((peak_rss_kib(pid) for pid in child_pids(master)), reverse=True)
