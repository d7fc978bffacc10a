"""Printing results: fixed-width tables, PASS/BELOW verdicts, the setup and outcome lines."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from common.procfs import child_pids
from common.server import HOST, Server

# The first figures of every table of 1 GiB transfers.
RATE_COLUMNS = (("MB/s", 7, ".0f"), ("MiB/s", 7, ".0f"), ("seconds", 9, ".2f"))


@dataclass(frozen=True)
class Table:
    """A text table: a left-aligned name column, right-aligned figures, a free-text last column.

    ``columns`` are (title, width, format spec of the figures); a figure given as text (``-``
    where there is none) is shown as it is.
    """

    title: str
    title_width: int
    columns: tuple[tuple[str, int, str], ...]
    last: str = ""

    def print_header(self) -> None:
        titles = "".join(f"{title:>{width}}" for title, width, _ in self.columns)
        header = _ending(f"{self.title:<{self.title_width}}{titles}", self.last)
        print(header)
        print("-" * len(header))

    def print_row(self, name: str, *figures: float | str, last: str = "") -> None:
        """A row; it may stop short of the last columns, left blank."""
        cells = "".join(
            f"{figure if isinstance(figure, str) else format(figure, spec):>{width}}"
            for figure, (_, width, spec) in zip(figures, self.columns, strict=False)
        )
        print(_ending(f"{name:<{self.title_width}}{cells}", last))


def _ending(line: str, last: str) -> str:
    return f"{line}  {last}" if last else line


def at_least(value: float, target: float) -> str:
    return f">= {target:g} {'PASS' if value >= target else 'BELOW'}"


def at_most(value: float, target: float) -> str:
    return f"<= {target:g} {'PASS' if value <= target else 'BELOW'}"


def print_setup(server: Server, *details: str) -> None:
    """The line that says what was measured: the server, the machine, the script's particulars."""
    print(
        f"manage.py serve on {HOST}:{server.port}: {len(child_pids(server.master))} gunicorn "
        f"workers + job worker; {os.cpu_count()} CPUs; " + "; ".join(details),
        flush=True,
    )


class Outcome(Protocol):
    name: str
    error: str | None
    checks: list[str]


def print_outcomes(items: Iterable[Outcome]) -> None:
    for item in items:
        outcome = f"FAILED ({item.error})" if item.error else "ok"
        print(f"  {item.name}: {outcome}; {', '.join(item.checks) or 'no checks'}")
