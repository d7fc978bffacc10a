"""A due schedule runs once per cluster, not once per node: two nodes' schedulers racing over
the same due row queue one job between them."""

from __future__ import annotations

import subprocess
import sys
import uuid

from tests.live.conftest import PROJECT_ROOT

RACE = """
import time
from django_q.scheduler import scheduler
end = time.monotonic() + 4
while time.monotonic() < end:
    scheduler()
"""


def test_two_nodes_schedulers_queue_a_due_schedule_once(cluster):
    name = f"probe-{uuid.uuid4().hex[:8]}"
    cluster.shell(
        "from datetime import timedelta\n"
        "from django.utils import timezone\n"
        "from django_q.models import Schedule\n"
        f"Schedule.objects.create(name={name!r}, func='math.floor', args='(1.5,)', "
        "schedule_type=Schedule.MINUTES, minutes=10, repeats=-1, "
        "next_run=timezone.now() - timedelta(seconds=1))"
    )
    command = [sys.executable, "manage.py", "shell", "-v", "0", "-c", RACE]
    nodes = [
        subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=cluster.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    logs = [node.communicate(timeout=120)[0] for node in nodes]

    created = [line for log in logs for line in log.splitlines() if f"[{name}]" in line]
    assert len(created) == 1, logs
    assert "created task" in created[0]
    cluster.shell(
        f"from django_q.models import Schedule; Schedule.objects.filter(name={name!r}).delete()"
    )
