"""What the machine can do at most, measured in the benchmark's own run to read its figures by.

Hashing 1 GiB in this Python (MD5 + SHA-512 in one pass, and each on a thread of its own) and
writing 1 GiB with `dd` into the DATA_DIR filesystem (with fdatasync, and with O_DIRECT).
"""

from __future__ import annotations

import hashlib
import math
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from common.payload import IMAGE_SIZE, PIECES, MiB, Payload
from common.report import RATE_COLUMNS, Table

DD_TIMEOUT = 60.0


@dataclass
class MachineLimits:
    """Seconds for 1 GiB, by what was done."""

    one_pass_seconds: float = float("nan")
    two_threads_seconds: float = float("nan")
    dd_seconds: float = float("nan")
    dd_direct_seconds: float = float("nan")

    def hash_one_pass(self, block: bytes) -> Payload:
        """The image and its digests, computed in one pass on one thread, timed."""
        started = time.perf_counter()
        payload = Payload.of(block)
        self.one_pass_seconds = time.perf_counter() - started
        return payload

    def hash_two_threads(self, block: bytes) -> None:
        def run(name: str) -> None:
            digest = hashlib.new(name)
            for _ in range(PIECES):
                digest.update(block)

        threads = [threading.Thread(target=run, args=(name,)) for name in ("md5", "sha512")]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.two_threads_seconds = time.perf_counter() - started

    def write_with_dd(self, data_dir: Path) -> None:
        self.dd_seconds = _dd_seconds(data_dir, "conv=fdatasync")
        self.dd_direct_seconds = _dd_seconds(data_dir, "oflag=direct", "conv=fdatasync")

    def print_table(self) -> None:
        print()
        table = Table("machine limit, 1 GiB", 40, RATE_COLUMNS)
        table.print_header()
        for label, seconds in (
            ("dd bs=1M count=1024 conv=fdatasync", self.dd_seconds),
            ("  the same with oflag=direct", self.dd_direct_seconds),
            ("MD5 + SHA-512, one pass, one thread", self.one_pass_seconds),
            ("MD5 | SHA-512, two threads at once", self.two_threads_seconds),
        ):
            if math.isnan(seconds):
                continue  # not measured by this script
            table.print_row(label, IMAGE_SIZE / seconds / 1e6, IMAGE_SIZE / seconds / MiB, seconds)


def _dd_seconds(data_dir: Path, *flags: str) -> float:
    """Seconds dd reports for writing 1 GiB of zeros into the DATA_DIR filesystem."""
    target = data_dir / "dd.tmp"
    command = ["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={PIECES}", *flags]
    try:
        started = time.perf_counter()
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=DD_TIMEOUT, check=True
        )
        elapsed = time.perf_counter() - started
    finally:
        target.unlink(missing_ok=True)
    reported = re.search(r"copied, ([0-9.]+) s", result.stderr)
    return float(reported.group(1)) if reported else elapsed
