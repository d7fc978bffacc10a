"""The django-q2 schedules that run housekeeping (``tasks.housekeeping``) in the job worker.

Each runs a management command through ``django.core.management.call_command``, so a schedule
and an operator at the shell take the same path:

=================  ===============  =========================================================
schedule name      every            why this often
=================  ===============  =========================================================
recover_imports    5 minutes        a task is stale after IMPORT_STALE_SECONDS (default 300 s)
                                    without a heartbeat; a killed worker's image is retryable
                                    again within about ten minutes.
recover_uploads    5 minutes        an upload is stale after UPLOAD_STALE_SECONDS (default 300
                                    s) without a beat; its node may be gone for good, so no
                                    node's start can be relied on to reset it.
cleanup_staging    60 minutes       staged files only cost disk space; files of uploading or
                                    importing images wait 24 h (``--older-than``) anyway.
purge_tasks        60 minutes       tasks expire TASK_TIME_TO_LIVE hours (default 48) after
                                    they finish; an hour late is invisible to users.
cleanup_stores     60 minutes       what killed writers left in a store only costs space; a
                                    write is dead after UPLOAD_STALE_SECONDS without a beat.
purge_audit        1 day            the retention (AUDIT_RETENTION_DAYS) is counted in days.
=================  ===============  =========================================================

``ensure_schedules()`` is idempotent: it creates missing rows and brings existing ones back to
these values (keeping their ``next_run``, so calling it at every start postpones nothing).
Schedules run once per cluster, whatever the number of nodes: django-q2's scheduler takes the due
rows under ``SELECT … FOR UPDATE`` and moves their ``next_run`` in the same transaction, and
nodes starting together that both created a row keep only the oldest.
Operators may pause a schedule by setting its ``repeats`` to 0 in the admin; that is respected.
"""

from __future__ import annotations

from django_q.models import Schedule

CALL_COMMAND = "django.core.management.call_command"

# name → interval in minutes; the name is also the command run.
HOUSEKEEPING = {
    "recover_imports": 5,
    "recover_uploads": 5,
    "cleanup_staging": 60,
    "purge_tasks": 60,
    "cleanup_stores": 60,
    "purge_audit": 1440,
}


def ensure_schedules() -> list[Schedule]:
    """Create or update the housekeeping schedules; return them."""
    schedules = []
    for command, minutes in HOUSEKEEPING.items():
        wanted = {
            "func": CALL_COMMAND,
            "args": repr((command,)),
            "kwargs": None,
            "schedule_type": Schedule.MINUTES,
            "minutes": minutes,
        }
        schedule = Schedule.objects.filter(name=command).order_by("id").first()
        if schedule is None:
            Schedule.objects.create(name=command, repeats=-1, **wanted)
            schedule = Schedule.objects.filter(name=command).order_by("id").first()
        # Two nodes starting at once may both have created one: the oldest wins.
        Schedule.objects.filter(name=command).exclude(pk=schedule.pk).delete()
        if any(getattr(schedule, key) != value for key, value in wanted.items()):
            for key, value in wanted.items():
                setattr(schedule, key, value)
            schedule.save(update_fields=list(wanted))
        schedules.append(schedule)
    return schedules
