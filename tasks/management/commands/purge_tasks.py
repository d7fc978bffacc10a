from imageservice.events.context import AuditedCommand
from tasks.housekeeping import purge_tasks


class Command(AuditedCommand):
    help = (
        "Soft-delete every task whose expires_at has passed (TASK_TIME_TO_LIVE hours after it "
        "finished), whichever project owns it; Glance does this only when the owner lists tasks."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="only list what would change")

    def handle(self, *args, dry_run: bool, verbosity: int, **options):
        report = purge_tasks(dry_run=dry_run)
        report.write(self.stdout, verbosity)
