"""A throw-away `make run` server for one benchmark run, and the entry point that stops it.

`throwaway_server()` seeds a temporary DATA_DIR, serves it on a free loopback port and, on
leaving (normally, on an error with the server log's tail on stderr, or on Ctrl-C), stops the
server and removes the directory. `run_benchmark()` makes SIGTERM unwind the same way.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from common.procfs import child_pids, command_line

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
BENCH_TOKEN = "bench-user-token-0123456789abcdef"
STARTUP_TIMEOUT = 60.0
COMMAND_TIMEOUT = 300.0
STOP_TIMEOUT = 20.0
LOG_TAIL_CHARS = 4000


@dataclass(frozen=True)
class Server:
    data_dir: Path
    port: int
    master: int  # the gunicorn master; its children are the workers

    def leftovers(self, *areas: str) -> list[str]:
        """Names of the files still in these DATA_DIR folders (``images``, ``staging``)."""
        return [path.name for area in areas for path in (self.data_dir / area).glob("*")]


@contextlib.contextmanager
def throwaway_server(prefix: str, settings: Mapping[str, str] | None = None) -> Iterator[Server]:
    """A seeded server in a new temporary DATA_DIR; ``settings`` add to its environment."""
    with tempfile.TemporaryDirectory(prefix=prefix) as temp:
        data_dir = Path(temp)
        env = {**os.environ, **(settings or {}), "DATA_DIR": temp, "DEMO_USER_TOKEN": BENCH_TOKEN}
        _manage(["migrate", "--noinput", "-v", "0"], env)
        _manage(["seed_demo"], env)
        port = _free_port()
        log_path = data_dir / "server.log"
        process = _start_server(port, env, log_path)
        try:
            _wait_until_ready(process, port)
            yield Server(data_dir, port, _gunicorn_master(process.pid))
        except Exception:
            print(log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:], file=sys.stderr)
            raise
        finally:
            _stop_server(process)


def run_benchmark(main: Callable[[], int]) -> NoReturn:
    """Exit with what ``main`` returns, or with 130 once Ctrl-C or SIGTERM stopped the server."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        status = main()
    except KeyboardInterrupt:
        print("interrupted; server stopped", file=sys.stderr)
        status = 130
    sys.exit(status)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM unwinds like Ctrl-C so the server is stopped


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _manage(args: list[str], env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        timeout=COMMAND_TIMEOUT,
        stdout=subprocess.DEVNULL,
    )


def _start_server(port: int, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        # A session of its own: Ctrl-C reaches only us, and we stop the server in order.
        return subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--host", HOST, "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_until_ready(server: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with status {server.returncode} while starting")
        try:
            connection = http.client.HTTPConnection(HOST, port, timeout=2)
            connection.request("GET", "/versions")
            if connection.getresponse().status < 500:
                connection.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not answering GET /versions after {STARTUP_TIMEOUT:.0f} s")


def _gunicorn_master(serve_pid: int) -> int:
    for pid in child_pids(serve_pid):
        if "gunicorn" in command_line(pid):
            return pid
    raise RuntimeError("no gunicorn process under manage.py serve")


def _stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)  # serve forwards it to gunicorn and the job worker
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=STOP_TIMEOUT)
    # Anything left in the server's own process group (a stuck worker) is ours to end.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait(timeout=STOP_TIMEOUT)
