"""A real service of `scripts/*-aio.sh` for one benchmark run: started unless it already runs,
its `status env` facts, and stopped (its state purged) on leaving, but only if started here."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Running:
    facts: dict[str, str]
    started_here: bool
    start_seconds: float


@contextlib.contextmanager
def running(script: Path, env: dict[str, str], timeout: float) -> Iterator[Running]:
    """The instance of ``script`` that ``env`` describes, running while the block runs."""
    already = run_script(script, env, timeout, "status", check=False).returncode == 0
    try:
        started = time.perf_counter()
        if not already:
            run_script(script, env, timeout, "start")
        facts = run_script(script, env, timeout, "status", "env").stdout
        yield Running(
            dict(line.split("=", 1) for line in facts.splitlines() if "=" in line),
            not already,
            time.perf_counter() - started,
        )
    finally:
        if not already:
            # Also after a start that failed half-way: nothing of ours stays behind.
            run_script(script, env, timeout, "stop", "--purge", check=False)


def run_script(
    script: Path, env: dict[str, str], timeout: float, *args: str, check: bool = True
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(script), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        print(result.stdout + result.stderr, file=sys.stderr)
        raise RuntimeError(f"{script.name} {' '.join(args)} exited with {result.returncode}")
    return result
