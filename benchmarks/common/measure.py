"""Measuring one transfer: its time and CPU, and worker memory sampled while it runs."""

from __future__ import annotations

import contextlib
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from common.client import TRANSFER_ERRORS, error_text
from common.payload import MiB
from common.procfs import child_pids, cpu_seconds, status_kib, workers_cpu

SAMPLE_INTERVAL = 0.02
EARLY_FRACTION = 0.25


@dataclass
class Transfer:
    """One measured request of a whole image: what it moved, how long, at what CPU, any failure."""

    name: str
    bytes_moved: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0  # the gunicorn workers
    client_cpu: float = 0.0  # this process
    error: str | None = None
    checks: list[str] = field(default_factory=list)
    memory: MemorySampler | None = None  # with measure(..., sample_memory=True)

    def add_bytes(self, count: int) -> None:
        self.bytes_moved += count

    @property
    def mb_per_s(self) -> float:
        return self.bytes_moved / self.seconds / 1e6 if self.seconds and not self.error else 0.0

    @property
    def mib_per_s(self) -> float:
        return self.mb_per_s * 1e6 / MiB


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(
    transfer: Transfer, master: int, send: Callable[[Transfer], None], sample_memory: bool = False
) -> Transfer:
    """Run ``send``, recording into ``transfer`` its time, CPU on both sides and any failure."""
    memory = MemorySampler(master) if sample_memory else None
    server_before, client_before = workers_cpu(master), _own_cpu()
    with memory or contextlib.nullcontext():
        started = time.perf_counter()
        try:
            send(transfer)
        except TRANSFER_ERRORS as error:
            transfer.error = error_text(error)
        transfer.seconds = time.perf_counter() - started
    transfer.server_cpu = workers_cpu(master) - server_before
    transfer.client_cpu = _own_cpu() - client_before
    transfer.memory = memory
    return transfer


@dataclass
class WorkerMemory:
    """One worker's memory (KiB) around a phase: VmRSS sampled during it, VmHWM before/after."""

    rss_before: int
    hwm_before: int
    cpu_before: float
    samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds in, VmRSS)
    hwm_after: int = 0
    cpu_after: float = 0.0

    def _largest(self, early: bool) -> int:
        if not self.samples:
            return self.rss_before
        cut = self.samples[-1][0] * EARLY_FRACTION
        values = [rss for at, rss in self.samples if (at <= cut) == early]
        return max(values, default=self.rss_before)

    @property
    def early(self) -> int:
        """Largest RSS in the first quarter of the phase: buffers and thread stacks set up."""
        return self._largest(early=True)

    @property
    def late(self) -> int:
        """Largest RSS in the remaining three quarters: grows only if memory follows the size."""
        return self._largest(early=False)

    @property
    def growth(self) -> int:
        return self.late - self.early

    @property
    def peak(self) -> int:
        """Largest RSS during the phase: the samples, and VmHWM if it rose (a spike in between)."""
        sampled = max(self.early, self.late)
        return max(sampled, self.hwm_after) if self.hwm_after > self.hwm_before else sampled


class MemorySampler:
    """Samples VmRSS of every gunicorn worker while a phase runs; VmHWM before and after."""

    def __init__(self, master: int):
        self.workers: dict[int, WorkerMemory] = {}
        for pid in child_pids(master):
            values = status_kib(pid, "VmRSS", "VmHWM")
            if values:
                self.workers[pid] = WorkerMemory(values["VmRSS"], values["VmHWM"], cpu_seconds(pid))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.perf_counter()
        while not self.stop.wait(SAMPLE_INTERVAL):
            for pid, memory in self.workers.items():
                rss = status_kib(pid, "VmRSS").get("VmRSS")
                if rss is not None:
                    memory.samples.append((time.perf_counter() - started, rss))

    def __enter__(self) -> MemorySampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for pid, memory in self.workers.items():
            memory.hwm_after = status_kib(pid, "VmHWM").get("VmHWM", memory.hwm_before)
            memory.cpu_after = cpu_seconds(pid)

    def serving(self) -> WorkerMemory | None:
        """The worker that did the work: the one whose CPU time grew most."""
        if not self.workers:
            return None
        return max(self.workers.values(), key=lambda memory: memory.cpu_after - memory.cpu_before)
