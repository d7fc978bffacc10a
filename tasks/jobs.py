"""Thin django-q2 entry points: they take ids, and re-read everything themselves."""

from __future__ import annotations

from tasks import cluster
from tasks.runner import run_import as run_import_task


def run_import(task_id: str) -> None:
    with cluster.job():
        run_import_task(task_id)
