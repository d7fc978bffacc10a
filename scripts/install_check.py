#!/usr/bin/env python3
"""Install the service alone into a clean venv, start it, and move one image through it.

The test venv also holds the test extra, whose clients bring many packages of their own: a
run-time import that only they provide passes `make test` and breaks `pip install .` for an
operator. So this check, standard library only:

1. builds a venv in a temporary directory and runs `pip install .` there (no extras, not
   editable; from a copy of the project, so the checkout gets no build/ directory);
2. runs `manage.py check` with that venv's Python and imports every module of the service, so
   a module that no request below reaches still gets its imports resolved;
3. migrates and seeds a temporary DATA_DIR, starts `manage.py serve` (gunicorn and the job
   worker) on a free loopback port and waits for GET /versions;
4. creates an image, PUTs a small raw body to /v2/images/{id}/file (the upload writer runs the
   format inspector), GETs it back, and checks the image is active with the right checksum.

Any failure exits 1 with the reason and the server log's tail. The server and the temporary
directory are removed in every case.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What `pip install .` needs of the project; the rest would only slow the copy.
NOT_PACKAGED = (
    "tests",
    "benchmarks",
    "docs",
    "scripts",
    "var",
    ".*",
    "build",
    "*.egg-info",
    "__pycache__",
)
TOKEN = "install-check-user-token"
BODY = b"imageservice install check, raw image data\n" * 4096
START_TIMEOUT = 60
STOP_TIMEOUT = 20
COMMAND_TIMEOUT = 600
LOG_TAIL = 4000
PACKAGES = ("imageservice", "images", "tasks", "importplugins")
IMPORT_EVERY_MODULE = (
    "import importlib, pkgutil\n"
    f"for package in {PACKAGES!r}:\n"
    "    path = importlib.import_module(package).__path__\n"
    "    for module in pkgutil.walk_packages(path, package + '.'):\n"
    "        importlib.import_module(module.name)\n"
)


class CheckFailed(Exception):
    """A step of the check failed; the message says which and why."""


def main() -> int:
    # A CI timeout sends SIGTERM: unwind like Ctrl-C, so the server and the directory still go.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with tempfile.TemporaryDirectory(prefix="imageservice-install-check-") as temp:
        root = Path(temp)
        log = root / "server.log"
        try:
            python = build_venv(root)
            env = clean_env(root, python)
            step("manage.py check, and import every module")
            manage(python, env, "check")
            manage(python, env, "shell", "-v", "0", "-c", IMPORT_EVERY_MODULE)
            manage(python, env, "migrate", "--noinput", "-v", "0")
            manage(python, env, "seed_demo", "-v", "0")
            with serving(python, env, log) as url:
                size = upload_and_download(url)
        except CheckFailed as failure:
            print(f"install-check: FAILED: {failure}", file=sys.stderr)
            if log.exists():
                print(log.read_text(errors="replace")[-LOG_TAIL:], file=sys.stderr)
            return 1
    print(f"install-check: ok (clean `pip install .`, served and returned {size} bytes)")
    return 0


def step(what: str) -> None:
    print(f"install-check: {what}", flush=True)


def run(command: list[str], env: dict[str, str] | None = None) -> None:
    """Run ``command`` in the checkout; its output, stdout and stderr interleaved, on failure."""
    label = " ".join(command)
    try:
        subprocess.run(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=COMMAND_TIMEOUT,
            check=True,
        )
    except subprocess.CalledProcessError as error:
        output = error.stdout.decode(errors="replace").strip()
        raise CheckFailed(f"{label} exited {error.returncode}:\n{output}") from None
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"{label} did not finish within {COMMAND_TIMEOUT} s") from None


def build_venv(root: Path) -> Path:
    """A fresh venv holding only the project and its declared dependencies; its Python."""
    source = root / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_PACKAGED))
    step(f"pip install . into a clean venv under {root}")
    run([sys.executable, "-m", "venv", str(root / "venv")])
    python = root / "venv" / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(source)])
    return python


def clean_env(root: Path, python: Path) -> dict[str, str]:
    """Only what the service needs: SQLite and the ORM broker under a temporary DATA_DIR."""
    home = root / "home"  # gunicorn keeps a control socket under ~/.gunicorn
    home.mkdir()
    return {
        "PATH": os.pathsep.join([str(python.parent), os.environ.get("PATH", os.defpath)]),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "DATA_DIR": str(root / "data"),
        "DEMO_USER_TOKEN": TOKEN,
    }


def manage(python: Path, env: dict[str, str], *args: str) -> None:
    run([str(python), "manage.py", *args], env)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(python: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """``manage.py serve`` on a free loopback port, in a session of its own; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    step(f"manage.py serve on {url}")
    command = [str(python), "manage.py", "serve", "--port", str(port), "--workers", "1"]
    with log.open("wb") as output:
        server = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**env, "HOST": "127.0.0.1"},
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_versions(url, server)
        yield url
    finally:
        stop(server)


def wait_for_versions(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CheckFailed(f"manage.py serve exited {server.returncode} while starting")
        with contextlib.suppress(OSError):
            if request(url, "GET", "/versions")[0] == 200:
                return
        time.sleep(0.2)
    raise CheckFailed(f"GET /versions did not answer 200 within {START_TIMEOUT} s")


def stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM (serve stops gunicorn and the worker), then SIGKILL whatever of the group is left."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait(timeout=STOP_TIMEOUT)


def request(
    url: str, method: str, path: str, body: bytes | None = None, content_type: str = ""
) -> tuple[int, bytes]:
    headers = {"X-Auth-Token": TOKEN, **({"Content-Type": content_type} if content_type else {})}
    call = urllib.request.Request(url + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(call, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def expect(answer: tuple[int, bytes], status: int, what: str) -> bytes:
    if answer[0] != status:
        raise CheckFailed(f"{what} answered {answer[0]}, not {status}: {answer[1][:500]!r}")
    return answer[1]


def upload_and_download(url: str) -> int:
    """Create, upload, download and show one raw image; the number of bytes that went round."""
    step("create an image, PUT its data, GET it back")
    fields = {"name": "install-check", "disk_format": "raw", "container_format": "bare"}
    created = request(url, "POST", "/v2/images", json.dumps(fields).encode(), "application/json")
    image_id = json.loads(expect(created, 201, "POST /v2/images"))["id"]
    data_path = f"/v2/images/{image_id}/file"
    expect(
        request(url, "PUT", data_path, BODY, "application/octet-stream"), 204, f"PUT {data_path}"
    )
    if expect(request(url, "GET", data_path), 200, f"GET {data_path}") != BODY:
        raise CheckFailed(f"GET {data_path} returned other bytes than were uploaded")
    image = json.loads(expect(request(url, "GET", f"/v2/images/{image_id}"), 200, "GET image"))
    wanted = {"status": "active", "size": len(BODY), "checksum": hashlib.md5(BODY).hexdigest()}
    seen = {name: image.get(name) for name in wanted}
    if seen != wanted:
        raise CheckFailed(f"the uploaded image is {seen}, expected {wanted}")
    return len(BODY)


if __name__ == "__main__":
    sys.exit(main())
