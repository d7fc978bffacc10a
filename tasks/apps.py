from django.apps import AppConfig
from django.core import checks


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Tasks"

    def ready(self) -> None:
        from django_q.signals import post_spawn  # noqa: PLC0415

        from tasks.checks import check_shared_staging  # noqa: PLC0415
        from tasks.cluster import install_stop_handler  # noqa: PLC0415

        # Every django-q2 job process learns to hand its import back when told to stop.
        post_spawn.connect(install_stop_handler, dispatch_uid="tasks.stop_handler")
        # A database check (migrate, check --database default); serve runs it at start too.
        checks.register(check_shared_staging, checks.Tags.database)
