from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from imageservice.quotas import services
from imageservice.quotas.models import LIMIT_NAMES, UNLIMITED


def _limit_value(text: str) -> int | None:
    """A limit as typed: a number, -1 or "unlimited", or "default" to clear it."""
    if text == "default":
        return None
    if text == "unlimited":
        return UNLIMITED
    try:
        return int(text)
    except ValueError:
        raise CommandError(f"Not a limit: {text!r} (a number, unlimited or default).") from None


class Command(BaseCommand):
    help = (
        "Show a project's quota limits and usage, or set its own limits (sizes in MiB; -1 or "
        "'unlimited'; 'default' gives it the site's default again)."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", help="project ID")
        for name in LIMIT_NAMES:
            parser.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar="LIMIT")
        parser.add_argument(
            "--defaults", action="store_true", help="drop all of the project's own limits"
        )

    def handle(self, *args, project: str, defaults: bool, **options):
        changes = {name: _limit_value(options[name]) for name in LIMIT_NAMES if options[name]}
        if defaults:
            changes = dict.fromkeys(LIMIT_NAMES)
        if changes:
            try:
                services.set_project_limits(project, changes)
            except ValueError as error:
                raise CommandError(str(error)) from error
        own = services.own_limits(project)
        for name, usage in services.project_usage(project).items():
            source = "project" if name in own else "default"
            if options["verbosity"] >= 1:
                self.stdout.write(
                    f"{name:<22} limit {usage.limit:>8} ({source})  usage {usage.usage}"
                )
        changed = ", ".join(
            f"{name}={'default' if v is None else v}" for name, v in changes.items()
        )
        self.stdout.write(f"Project {project}: {f'set {changed}' if changes else 'unchanged'}.")
