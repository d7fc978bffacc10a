"""Keystone mode against local mode: image creates and lists, and the server CPU they cost.

One run, two throw-away `make run` servers one after the other: local mode with the demo
user's token, then Keystone mode (``AUTH_STRATEGY=keystone``, keystonemiddleware validating
against the real Keystone of ``scripts/keystone-aio.sh``, started if absent) with a token of
Keystone's ``alice``. Each worker validates the token once with Keystone during the warm-up;
every measured request is then keystonemiddleware's cached path. The same phases as
``api.py`` (200 creates, lists of 25 for 10 s from 1 and 8 clients), then the extra server
CPU per request that Keystone mode costs, against the target of at most 1 ms.

Run: ``.venv/bin/python benchmarks/keystone.py`` (about a minute; more the first time, while
keystone-aio installs Keystone).
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
from collections.abc import Callable

from api import LIST_CLIENTS, LIST_PATH, Phase, connect, measure_load, run_creates, run_lists
from keystoneauth1 import session
from keystoneauth1.identity import v3

from common.report import Table, at_most, print_setup
from common.server import BENCH_TOKEN, PROJECT_ROOT, run_benchmark, throwaway_server

KEYSTONE_AIO = PROJECT_ROOT / "scripts" / "keystone-aio.sh"
WARMUP_CONNECTIONS = 16  # enough to reach every gunicorn worker at least once
WARMUP_REQUESTS = 5
EXTRA_CPU_TARGET_MS = 1.0


def keystone_facts() -> dict[str, str]:
    subprocess.run([str(KEYSTONE_AIO), "start"], check=True, stdin=subprocess.DEVNULL)
    out = subprocess.run(
        [str(KEYSTONE_AIO), "status", "env"], check=True, capture_output=True, text=True
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def keystone_settings(facts: dict[str, str]) -> dict[str, str]:
    options = {
        "WWW_AUTHENTICATE_URI": facts["KEYSTONE_AUTH_URL"],
        "AUTH_URL": facts["KEYSTONE_AUTH_URL"],
        "AUTH_TYPE": "password",
        "USERNAME": facts["GLANCE_USER"],
        "PASSWORD": facts["GLANCE_PASSWORD"],
        "PROJECT_NAME": facts["GLANCE_PROJECT"],
        "USER_DOMAIN_NAME": "Default",
        "PROJECT_DOMAIN_NAME": "Default",
    }
    authtoken = {f"KEYSTONE_AUTHTOKEN_{name}": value for name, value in options.items()}
    return {"AUTH_STRATEGY": "keystone", **authtoken}


def keystone_token(facts: dict[str, str]) -> str:
    auth = v3.Password(
        auth_url=facts["KEYSTONE_AUTH_URL"],
        username=facts["ALICE_USER"],
        password=facts["ALICE_PASSWORD"],
        project_name=facts["ALICE_PROJECT"],
        user_domain_id="default",
        project_domain_id="default",
    )
    return session.Session(auth=auth).get_token()


def warm_up(port: int, token: str) -> None:
    """A few requests on many connections: every worker imports its code and, in Keystone
    mode, validates the token with Keystone once, so the phases measure the cached path."""
    for _ in range(WARMUP_CONNECTIONS):
        connection = connect(port)
        for _ in range(WARMUP_REQUESTS):
            connection.request("GET", LIST_PATH, headers={"X-Auth-Token": token})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"warm-up GET {LIST_PATH} answered {response.status}")
        connection.close()


PHASES: list[tuple[str, Callable[[int, Phase], None]]] = [
    ("create", run_creates),
    ("list, 1 client", lambda port, phase: run_lists(port, phase, 1)),
    (f"list, {LIST_CLIENTS} clients", lambda port, phase: run_lists(port, phase, LIST_CLIENTS)),
]


def compare(facts: dict[str, str]) -> tuple[list[Phase], list[Phase]]:
    """Both servers up at once, each phase run on local then on Keystone mode: the load other
    work puts on a shared machine drifts less between the two halves of a pair."""
    token = keystone_token(facts)
    with contextlib.ExitStack() as stack:
        local = stack.enter_context(throwaway_server("imageservice-bench-local-"))
        keystone = stack.enter_context(
            throwaway_server("imageservice-bench-keystone-", keystone_settings(facts))
        )
        modes = ((local, BENCH_TOKEN, "local"), (keystone, token, "keystone"))
        for server, mode_token, mode in modes:
            warm_up(server.port, mode_token)
            print_setup(server, f"{mode} mode")
        results: tuple[list[Phase], list[Phase]] = ([], [])
        for name, load in PHASES:
            for (server, mode_token, _), phases in zip(modes, results, strict=True):
                run = functools.partial(load, server.port)
                phases.append(measure_load(Phase(name, token=mode_token), server.master, run))
    return results


def print_comparison(local: list[Phase], keystone: list[Phase]) -> None:
    columns = (
        ("local/s", 9, ".0f"),
        ("keystone/s", 11, ".0f"),
        ("local p50", 10, ".1f"),
        ("ks p50", 8, ".1f"),
        ("local CPU", 10, ".2f"),
        ("ks CPU", 8, ".2f"),
        ("extra CPU", 10, ".2f"),
    )
    table = Table("phase (ms per request)", 24, columns, "target")
    table.print_header()
    for plain, keyed in zip(local, keystone, strict=True):
        extra = keyed.cpu_ms_per_request - plain.cpu_ms_per_request
        table.print_row(
            plain.name,
            *(plain.rate, keyed.rate, plain.percentile(0.5), keyed.percentile(0.5)),
            *(plain.cpu_ms_per_request, keyed.cpu_ms_per_request, extra),
            last=at_most(extra, EXTRA_CPU_TARGET_MS),
        )


def main() -> int:
    local, keystone = compare(keystone_facts())
    print(f"CPU: gunicorn master and workers; lists of 25, {LIST_CLIENTS} clients at most")
    print_comparison(local, keystone)
    return 1 if any(phase.errors for phase in local + keystone) else 0


if __name__ == "__main__":
    run_benchmark(main)
