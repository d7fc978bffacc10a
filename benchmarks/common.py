"""What the benchmarks share: a throw-away `make run` server and /proc readers for its processes.

`throwaway_server()` builds a temporary DATA_DIR, runs `migrate` and `seed_demo` there with a
fixed demo token, starts `manage.py serve` (gunicorn plus the django-q2 worker, exactly as
`make run`) on a free loopback port and waits for `GET /versions`. On leaving, normally, on an
error (the server log's tail goes to stderr) or on Ctrl-C, it stops the server and removes the
directory.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

try:
    import psutil
except ImportError:  # The /proc fallback below covers a venv without psutil.
    psutil = None

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
BENCH_TOKEN = "bench-user-token-0123456789abcdef"
STARTUP_TIMEOUT = 60.0
COMMAND_TIMEOUT = 300.0
STOP_TIMEOUT = 20.0
LOG_TAIL_CHARS = 4000


# --- server lifecycle -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def server_env(data_dir: Path, token: str = BENCH_TOKEN) -> dict[str, str]:
    env = dict(os.environ)
    env["DATA_DIR"] = str(data_dir)
    env["DEMO_USER_TOKEN"] = token
    return env


def manage(args: list[str], env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        timeout=COMMAND_TIMEOUT,
        stdout=subprocess.DEVNULL,
    )


def start_server(port: int, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
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


def wait_until_ready(server: subprocess.Popen[bytes], port: int) -> None:
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


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)  # serve forwards it to gunicorn and the job worker
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=STOP_TIMEOUT)
    # Anything left in the server's own process group (a stuck worker) is ours to end.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait(timeout=STOP_TIMEOUT)


@dataclass(frozen=True)
class Server:
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    master: int  # the gunicorn master; its children are the workers

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"


@contextlib.contextmanager
def throwaway_server(prefix: str, token: str = BENCH_TOKEN) -> Iterator[Server]:
    with tempfile.TemporaryDirectory(prefix=prefix) as temp:
        data_dir = Path(temp)
        env = server_env(data_dir, token)
        manage(["migrate", "--noinput", "-v", "0"], env)
        manage(["seed_demo"], env)
        port = free_port()
        log_path = data_dir / "server.log"
        process = start_server(port, env, log_path)
        try:
            wait_until_ready(process, port)
            yield Server(data_dir, port, process, gunicorn_master(process.pid))
        except Exception:
            print(log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:], file=sys.stderr)
            raise
        finally:
            stop_server(process)


def raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM unwinds like Ctrl-C so the server is stopped


# --- server process accounting ----------------------------------------------------------------


def child_pids(pid: int) -> list[int]:
    if psutil is not None:
        try:
            return [child.pid for child in psutil.Process(pid).children()]
        except psutil.Error:
            return []
    children: list[int] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if int(text[text.rindex(")") + 2 :].split()[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def gunicorn_master(serve_pid: int) -> int:
    for pid in child_pids(serve_pid):
        if "gunicorn" in command_line(pid):
            return pid
    raise RuntimeError("no gunicorn process under manage.py serve")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (not of its reaped children)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def gunicorn_cpu(master: int) -> float:
    return sum(cpu_seconds(pid) for pid in [master, *child_pids(master)])


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


# --- bodies sent by PUT (/file and /stage) ----------------------------------------------------

SENDFILE_SLICE = 64 * 1024 * 1024  # a Content-Length body goes out in sendfile(2) calls this large
TRANSFER_TIME_LIMIT = 30.0  # per 1 GiB request: below ~36 MB/s it is abandoned as failed
REQUEST_TIMEOUT = 60.0  # per socket operation (the server fsyncs 1 GiB before answering)


class BenchError(Exception):
    """A measured request did not do what it should; the run reports it and fails."""


def _begin_put(
    port: int, path: str, framing: tuple[str, str], token: str
) -> http.client.HTTPConnection:
    connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
    connection.putrequest("PUT", path, skip_accept_encoding=True)
    connection.putheader("X-Auth-Token", token)
    connection.putheader("Content-Type", "application/octet-stream")
    connection.putheader(*framing)
    connection.endheaders()
    return connection


def _finish_put(connection: http.client.HTTPConnection, sending: OSError | None) -> None:
    """Read the answer to a PUT (its 204 is the measured end), or surface the send error."""
    try:
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException):
        if sending is not None:
            raise sending from None
        raise
    finally:
        connection.close()
    if response.status != 204:
        raise BenchError(f"PUT answered {response.status}: {body[:300]!r}")


def check_deadline(deadline: float, limit: float = TRANSFER_TIME_LIMIT) -> None:
    if time.monotonic() > deadline:
        raise BenchError(f"abandoned after {limit:g} s")


def put_with_length(
    port: int,
    path: str,
    source: Path,
    size: int,
    progress: Callable[[int], None] | None = None,
    token: str = BENCH_TOKEN,
) -> None:
    """PUT ``size`` bytes of ``source`` with Content-Length, sent with sendfile(2)."""
    deadline = time.monotonic() + TRANSFER_TIME_LIMIT
    connection = _begin_put(port, path, ("Content-Length", str(size)), token)
    sent_total, sending = 0, None
    try:
        with source.open("rb") as handle:
            while sent_total < size:
                check_deadline(deadline)
                count = min(SENDFILE_SLICE, size - sent_total)
                sent = connection.sock.sendfile(handle, sent_total, count)
                if not sent:
                    raise BenchError("sendfile sent nothing")
                sent_total += sent
                if progress:
                    progress(sent)
    except OSError as error:  # the server may have answered early (an error) and closed
        sending = error
    except BaseException:  # abandoned (time limit, Ctrl-C)
        connection.close()
        raise
    _finish_put(connection, sending)


def put_chunked(
    port: int,
    path: str,
    block: bytes,
    pieces: int,
    progress: Callable[[int], None] | None = None,
    token: str = BENCH_TOKEN,
) -> None:
    """PUT ``pieces`` copies of ``block`` with chunked transfer encoding, one chunk each."""
    deadline = time.monotonic() + TRANSFER_TIME_LIMIT
    connection = _begin_put(port, path, ("Transfer-Encoding", "chunked"), token)
    chunk_header = b"%x\r\n" % len(block)
    sending = None
    try:
        sock = connection.sock
        sock.sendall(chunk_header)
        for number in range(pieces):
            check_deadline(deadline)
            sock.sendall(block)
            if progress:
                progress(len(block))
            # The CRLF closing this chunk and the next chunk's size line (or the last chunk).
            sock.sendall(b"\r\n" + (chunk_header if number < pieces - 1 else b"0\r\n\r\n"))
    except OSError as error:
        sending = error
    except BaseException:
        connection.close()
        raise
    _finish_put(connection, sending)
