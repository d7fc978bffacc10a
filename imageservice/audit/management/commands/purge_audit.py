from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from imageservice.audit.models import AuditEvent


class Command(BaseCommand):
    help = "Delete audit events older than AUDIT_RETENTION_DAYS (0 keeps them for ever)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--days", type=int, default=None, help="override AUDIT_RETENTION_DAYS for this run"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would be deleted, delete nothing"
        )

    def handle(self, *args, days: int | None, dry_run: bool, verbosity: int, **options):
        days = settings.AUDIT_RETENTION_DAYS if days is None else days
        if days <= 0:
            self.stdout.write("Audit retention is unlimited: nothing purged.")
            return
        cutoff = timezone.now() - timedelta(days=days)
        old = AuditEvent.objects.filter(at__lt=cutoff)
        if dry_run:
            count = old.count()
            self.stdout.write(
                f"Would delete {count} audit events older than {days} days "
                f"(before {cutoff:%Y-%m-%d %H:%M:%S} UTC)."
            )
            return
        count, _ = old.delete()
        self.stdout.write(
            f"Deleted {count} audit events older than {days} days "
            f"(before {cutoff:%Y-%m-%d %H:%M:%S} UTC)."
        )
