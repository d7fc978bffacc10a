"""Operator console benchmark: the image and task lists with a large catalogue.

On a throw-away server (`common.server.throwaway_server`) holding CATALOGUE images and as many
import tasks, written straight into its database, the operator signs in to the console with a
`requests` session, as a browser would, and loads each list page REQUESTS times: the image list
unfiltered and filtered by status, the task list unfiltered and filtered by status, and the
dashboard. For each page: latency p50/p95 (the server's time on loopback: the client only reads
the page) and the server's CPU per page, beside the target of 100 ms per list page.

Run: ``make bench`` or ``.venv/bin/python benchmarks/console.py`` (``CATALOGUE=10000`` for a
quick run; ``DATABASE_URL`` for PostgreSQL).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time

import requests

from common.procfs import gunicorn_cpu
from common.report import Table, at_most, print_setup
from common.server import HOST, PROJECT_ROOT, run_benchmark, throwaway_server

CATALOGUE = int(os.environ.get("CATALOGUE", "100000"))
REQUESTS = 30
WARMUP_REQUESTS = 3
TARGET_MS = 100.0
OPERATOR_PASSWORD = "bench-operator-password-0123"
PAGES = (
    ("image list", "/admin/images/image/", True),
    ("image list, status=active", "/admin/images/image/?status__exact=active", True),
    ("task list", "/admin/tasks/task/", True),
    ("task list, status=failure", "/admin/tasks/task/?status__exact=failure", True),
    ("dashboard (index)", "/admin/", False),
)
# Written in the server's database by `manage.py shell`: images of the demo project in the
# usual mix of statuses, each with a tag and a location, and one import task per image, a
# tenth of them failed. Batches keep the memory flat.
POPULATE = """
import itertools, uuid
from django.utils import timezone
from images.models import Image, ImageLocation, ImageTag
from imageservice.identity.models import Project
from tasks.models import Task
count = {count}
owner = Project.objects.get(name="demo").id
statuses = ["active"] * 8 + ["queued", "deactivated"]
now = timezone.now()
for start in range(0, count, 5000):
    images = [
        Image(id=str(uuid.uuid4()), name=f"bench-{{n}}", owner=owner, status=statuses[n % 10],
              disk_format="raw", container_format="bare", size=1024 * (n % 977 + 1),
              created_at=now - timezone.timedelta(seconds=count - n))
        for n in range(start, min(start + 5000, count))
    ]
    Image.objects.bulk_create(images)
    ImageTag.objects.bulk_create(ImageTag(image=image, value="bench") for image in images)
    ImageLocation.objects.bulk_create(
        ImageLocation(image=image, store="", url=f"file:///bench/{{image.id}}")
        for image in images if image.status == "active"
    )
    Task.objects.bulk_create(
        Task(owner=owner, image_id=image.id, status="failure" if n % 10 == 0 else "success",
             input={{"import_req": {{"method": {{"name": "glance-direct"}}}}}},
             created_at=image.created_at)
        for n, image in zip(range(start, count), images)
    )
print(Image.objects.count(), Task.objects.count())
"""


def populate(server_env: dict[str, str], count: int) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", POPULATE.format(count=count)],
        cwd=PROJECT_ROOT,
        env=server_env,
        check=True,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    return result.stdout.strip().splitlines()[-1]  # the counts, after the shell's own lines


def sign_in(base: str) -> requests.Session:
    session = requests.Session()
    login = session.get(f"{base}/admin/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
    assert token, "no CSRF token on the login page"
    answer = session.post(
        f"{base}/admin/login/?next=/admin/",
        data={
            "csrfmiddlewaretoken": token[1],
            "username": "operator",
            "password": OPERATOR_PASSWORD,
            "next": "/admin/",
        },
        headers={"Referer": f"{base}/admin/login/"},
        timeout=30,
    )
    assert answer.url.rstrip("/").endswith("/admin"), f"sign-in failed: {answer.url}"
    return session


def measure(session: requests.Session, url: str, master: int) -> tuple[list[float], float]:
    """Latencies (ms) of REQUESTS loads of ``url``, and the server's CPU ms per load."""
    for _ in range(WARMUP_REQUESTS):
        session.get(url, timeout=60).raise_for_status()
    latencies = []
    cpu_before = gunicorn_cpu(master)
    for _ in range(REQUESTS):
        started = time.perf_counter()
        answer = session.get(url, timeout=60)
        latencies.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    return latencies, (gunicorn_cpu(master) - cpu_before) * 1000 / REQUESTS


def main() -> int:
    settings = {"DEMO_OPERATOR_PASSWORD": OPERATOR_PASSWORD, "WEB_CONCURRENCY": "2"}
    with throwaway_server("imageservice-bench-console-", settings) as server:
        env = {**os.environ, **settings, "DATA_DIR": str(server.data_dir)}
        started = time.monotonic()
        counts = populate(env, CATALOGUE)
        print_setup(
            server,
            f"{counts.split()[0]} images and {counts.split()[1]} tasks written in "
            f"{time.monotonic() - started:.0f} s",
            f"database {os.environ.get('DATABASE_URL', 'SQLite').split('@')[-1]}",
        )
        base = f"http://{HOST}:{server.port}"
        session = sign_in(base)
        table = Table(
            "page", 28, (("p50 ms", 9, ".1f"), ("p95 ms", 9, ".1f"), ("CPU ms", 9, ".1f")), "target"
        )
        table.print_header()
        below = 0
        for name, path, is_list in PAGES:
            latencies, cpu_ms = measure(session, base + path, server.master)
            p50 = statistics.median(latencies)
            p95 = statistics.quantiles(latencies, n=20)[-1]
            verdict = at_most(p95, TARGET_MS) if is_list else ""
            below += "BELOW" in verdict
            table.print_row(name, p50, p95, cpu_ms, last=verdict)
    return 1 if below else 0


if __name__ == "__main__":
    run_benchmark(main)
