"""``make fuzz``: schemathesis against a live server, from the server's own ``/openapi.json``.

A fresh gunicorn (SQLite under a temporary DATA_DIR, or, with ``DATABASE_URL`` on PostgreSQL, a
database ``fuzz_<name>`` on that server, dropped at the end) is fuzzed for ``--max-time`` seconds
per persona: the admin (``operator``), the owner (``user``, project demo) and a reader of project
demo; more rounds follow (the next personas, the next seeds) while fewer than ``--min-requests``
were sent, as on a loaded machine, up to ``--max-rounds``. Before each round the same few images
are created again (queued, active with data, shared with demo by another project, public), and
the hooks (``tests/fuzz/hooks.py``) mix their ids into the generated paths so the calls reach
real images, not only 404s.

The run fails on any response >= 500, any response the document does not describe (status,
content type, headers, body schema), or fewer than ``--min-requests`` requests in all. Every
round's seed is printed: ``make fuzz FUZZ_SEED=<seed>`` replays the run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tests.live.conftest import (
    ACCESS_LOG_REQUEST,
    DEMO_PASSWORDS,
    DEMO_TOKENS,
    PROJECT_ROOT,
    SEED_LINE,
    free_port,
    recreate_postgres_database,
    run_checked,
    start_gunicorn,
    stop,
    wait_until_serving,
    write_live_settings,
)

HOOKS = Path(__file__).with_name("hooks.py")
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
READER = "fuzzreader"
# The reader of project demo and its token, then spare tokens that the identity calls may
# validate and revoke (never a persona's own).
ACCOUNTS_SCRIPT = f"""
from imageservice.identity.models import User
from imageservice.identity.services import ensure_project, ensure_user, issue_token
demo, _ = ensure_project("demo")
reader, _ = ensure_user({READER!r}, demo, ["reader"])
print(issue_token(reader)[1])
for name in ("user", "other", {READER!r}):
    print(issue_token(User.objects.get(username=name))[1])
"""
# Two named stores, so the multi-store calls (/v2/info/stores, DELETE /v2/stores/…) are fuzzed too.
STORES = ("fast", "slow")


@dataclass(frozen=True)
class Persona:
    name: str
    username: str
    token: str
    # The admin asks for JSON errors, so their schema is checked too; the others get the HTML
    # a glanceclient gets (`Accept: */*`).
    accept: str


class Server:
    """gunicorn on loopback with a database of its own, the demo accounts and a reader."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if k != "PUBLIC_ENDPOINT"}
        settings_dir = root / "settings"
        self.env.update(
            DATA_DIR=str(root / "data"),
            HOME=str(root),
            DJANGO_SETTINGS_MODULE=write_live_settings(settings_dir),
            PYTHONPATH=os.pathsep.join(filter(None, [str(settings_dir), str(PROJECT_ROOT)])),
            # As `manage.py serve` runs it: gthread workers.
            GUNICORN_CMD_ARGS="--threads 4",
            ENABLED_BACKENDS=",".join(f"{name}:{root / 'data' / name}" for name in STORES),
        )
        for variable, value in [*DEMO_TOKENS.values(), *DEMO_PASSWORDS.values()]:
            self.env[variable] = value
        self.database_url = os.environ.get("DATABASE_URL", "")
        self.postgres = self.database_url.startswith(("postgres://", "postgresql://"))
        self.database_name = ""
        if self.postgres:
            self.database_name = "fuzz_" + urlsplit(self.database_url).path.lstrip("/")
            self.env["DATABASE_URL"] = recreate_postgres_database(
                self.database_url, self.database_name
            )
        else:
            self.env.pop("DATABASE_URL", None)
        self.url = f"http://127.0.0.1:{free_port()}"
        self.access_log = root / "access.log"
        self.access_log.touch()
        self.server_log = root / "server.log"
        self.process: subprocess.Popen | None = None
        self.project_ids: dict[str, str] = {}
        self.reader_token = ""
        self.spare_tokens: list[str] = []

    def manage(self, *args: str) -> str:
        return run_checked([sys.executable, "manage.py", *args], self.env)

    def start(self) -> None:
        self.manage("migrate", "--noinput", "-v", "0")
        seeded = self.manage("seed_demo", "--endpoint", self.url)
        self.project_ids = {m["username"]: m["project_id"] for m in SEED_LINE.finditer(seeded)}
        # One process for the reader and the spare tokens: each manage.py start costs seconds.
        tokens = self.manage("shell", "-v", "0", "-c", ACCOUNTS_SCRIPT).split()
        self.reader_token, self.spare_tokens = tokens[0], tokens[1:]
        port = int(self.url.rsplit(":", 1)[1])
        self.process = start_gunicorn(port, self.env, self.access_log, self.server_log)
        wait_until_serving(self.url, self.process, self.server_log)

    def close(self) -> None:
        if self.process is not None:
            stop(self.process)
        if self.postgres:
            recreate_postgres_database(self.database_url, self.database_name, drop_only=True)
        cluster = self.env.get("REDIS_URL") and _cluster_name(self.root / "settings")
        if cluster:
            _drop_queue(self.env["REDIS_URL"], cluster)

    def call(self, method: str, path: str, token: str, body: object = None, **headers: str):
        data = None
        if isinstance(body, bytes):
            data = body
        elif body is not None:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"X-Auth-Token": token, **headers}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else None

    def make_images(self) -> list[str]:
        """The images each persona's run starts from: their ids, for the hooks."""
        owner, other = DEMO_TOKENS["user"][1], DEMO_TOKENS["other"][1]
        admin = DEMO_TOKENS["operator"][1]
        formats = {"disk_format": "raw", "container_format": "bare"}
        queued = self.call("POST", "/v2/images", owner, {"name": "fuzz-queued", **formats})
        active = self.call("POST", "/v2/images", owner, {"name": "fuzz-active", **formats})
        self.call(
            "PUT",
            f"/v2/images/{active['id']}/file",
            owner,
            os.urandom(4096),
            **{"Content-Type": "application/octet-stream"},
        )
        shared = self.call(
            "POST", "/v2/images", other, {"name": "fuzz-shared", "visibility": "shared"}
        )
        self.call(
            "POST",
            f"/v2/images/{shared['id']}/members",
            other,
            {"member": self.project_ids["user"]},
        )
        public = self.call("POST", "/v2/images", admin, {"name": "fuzz-public", **formats,
                                                         "visibility": "public"})  # fmt: skip
        return [queued["id"], active["id"], shared["id"], public["id"]]

    def requests_since(self, mark: int) -> list[tuple[str, str, int]]:
        with self.access_log.open("rb") as log:
            log.seek(mark)
            text = log.read().decode(errors="replace")
        return [
            (m["method"], m["path"], int(m["status"])) for m in ACCESS_LOG_REQUEST.finditer(text)
        ]


def _cluster_name(settings_dir: Path) -> str | None:
    text = (settings_dir / "imageservice_live_settings.py").read_text()
    match = re.search(r"'name': '([^']+)'", text)
    return match.group(1) if match else None


def _drop_queue(redis_url: str, cluster: str) -> None:
    # Imports the fuzzer accepted were queued for a worker that never ran: remove them.
    import redis  # noqa: PLC0415 (only with REDIS_URL)

    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"django_q:{cluster}:*"):
        client.delete(key)


def fuzz(
    server: Server, persona: Persona, seed: int, args: argparse.Namespace
) -> tuple[bool, list[tuple[str, str, int]]]:
    """One persona's run: whether it passed, and the requests it sent."""
    image_ids = server.make_images()
    env = {
        **server.env,
        "SCHEMATHESIS_HOOKS": str(HOOKS),
        "FUZZ_IMAGE_IDS": ",".join(image_ids),
        "FUZZ_PROJECT_IDS": ",".join(server.project_ids.values()),
        "FUZZ_STORES": ",".join(STORES),
        "FUZZ_SPARE_TOKENS": ",".join(server.spare_tokens),
    }
    mark = server.access_log.stat().st_size
    command = [
        str(Path(sys.executable).with_name("st")), "run", f"{server.url}/openapi.json",
        "--seed", str(seed),
        "--checks", ",".join(CHECKS),
        "--max-examples", str(args.max_examples),
        "--max-time", str(args.max_time),
        "--phases", "examples,coverage,fuzzing",
        "--workers", "4",
        "--request-timeout", "30",
        "--suppress-health-check", "all",
        # Only the seed decides what is sent: no examples kept from earlier runs.
        "--generation-database", "none",
        "--no-color",
        "--header", f"X-Auth-Token: {persona.token}",
        "--header", f"Accept: {persona.accept}",
        # The console's HTML pages are the Django admin's, not the API.
        "--exclude-path", "/admin/",
    ]  # fmt: skip
    if args.report_dir:
        command += [
            "--report",
            "har",
            "--report-har-path",
            str(Path(args.report_dir).resolve() / f"{persona.name}.har"),
        ]
    print(f"\n=== {persona.name} ({persona.username}), seed {seed}", flush=True)
    # Run in the temporary directory: schemathesis keeps a cache where it runs.
    result = subprocess.run(command, cwd=server.root, env=env, stdin=subprocess.DEVNULL)
    time.sleep(0.5)  # the workers write their last access lines just after answering
    return result.returncode == 0, server.requests_since(mark)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED") or 0))
    parser.add_argument("--max-time", type=int, default=30, help="seconds per persona")
    parser.add_argument("--max-examples", type=int, default=40, help="per operation and phase")
    parser.add_argument("--min-requests", type=int, default=2000)
    parser.add_argument("--max-rounds", type=int, default=6, help="persona runs at most")
    parser.add_argument("--persona", action="append", help="only these (admin, owner, reader)")
    parser.add_argument("--report-dir", help="write each persona's requests there (HAR)")
    args = parser.parse_args()
    seed = args.seed or random.SystemRandom().randrange(1, 2**31)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="imageservice-fuzz-") as tmp:
        server = Server(Path(tmp))
        try:
            server.start()
            personas = [
                Persona("admin", "operator", DEMO_TOKENS["operator"][1], "application/json"),
                Persona("owner", "user", DEMO_TOKENS["user"][1], "*/*"),
                Persona("reader", READER, server.reader_token, "*/*"),
            ]
            personas = [p for p in personas if not args.persona or p.name in args.persona]
            passed, statuses = True, Counter()
            # One round per persona; on a loaded machine (fewer requests in the time) more
            # rounds with the next seeds, up to --max-rounds.
            for index in range(args.max_rounds):
                if index >= len(personas) and sum(statuses.values()) >= args.min_requests:
                    break
                persona = personas[index % len(personas)]
                persona_passed, requests = fuzz(server, persona, seed + index, args)
                passed &= persona_passed
                statuses.update(status for _, _, status in requests)
            errors = [line for line in server.requests_since(0) if line[2] >= 500]
        finally:
            server.close()
    total = sum(statuses.values())
    database = "PostgreSQL" if server.postgres else "SQLite"
    print(f"\n{database}: {total} requests in {time.monotonic() - started:.0f} s, by status:")
    print("  " + ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items())))
    for method, path, status in errors[:20]:
        print(f"  {status} {method} {path}")
    print(f"Reproduce with: make fuzz FUZZ_SEED={seed}")
    if errors or total < args.min_requests or not passed:
        if total < args.min_requests:
            print(f"Only {total} requests; at least {args.min_requests} are expected.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
