from imageservice.events.context import AuditedCommand
from tasks.housekeeping import cleanup_stores


class Command(AuditedCommand):
    help = (
        "Remove from every store the partial data of writes that can no longer commit: uploads "
        "and stagings that stopped beating, imports whose task ended or died. Committed image "
        "data is never touched."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="only list what would change")

    def handle(self, *args, dry_run: bool, verbosity: int, **options):
        cleanup_stores(dry_run=dry_run).write(self.stdout, verbosity)
