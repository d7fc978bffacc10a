"""Helpers shared by the live-server tests: payload files and the `glance` CLI."""

from __future__ import annotations

import hashlib
import os
import pty
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

GLANCE = Path(sys.executable).parent / "glance"


@dataclass(frozen=True)
class Payload:
    path: Path
    data: bytes
    md5: str
    sha512: str


def make_payload(directory: Path, size: int, name: str = "payload.raw") -> Payload:
    data = os.urandom(size)
    path = directory / name
    path.write_bytes(data)
    return Payload(
        path=path,
        data=data,
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        sha512=hashlib.sha512(data).hexdigest(),
    )


def run_glance(service, *args: str) -> str:
    # stdin is a terminal, so nothing but --file is taken as image data.
    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            [
                str(GLANCE),
                "--os-image-url",
                service.url,
                "--os-auth-token",
                service.user.token,
                *args,
            ],
            env=service.env,
            stdin=follower,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert result.returncode == 0, result.stderr
    return result.stdout


def property_table(output: str) -> dict[str, str]:
    rows = [
        [cell.strip() for cell in line.strip()[1:-1].split("|")]
        for line in output.splitlines()
        if line.startswith("|")
    ]
    return dict(rows[1:])
