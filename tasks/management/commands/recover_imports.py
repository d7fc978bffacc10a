from imageservice.events.context import AuditedCommand
from tasks.housekeeping import recover_imports


class Command(AuditedCommand):
    help = (
        "Fail import tasks whose worker stopped beating for IMPORT_STALE_SECONDS (twice that "
        "while pending) and put their images back where the import can be retried; reset images "
        "stuck in 'importing' with no live task to 'uploading' (staged data kept) or 'queued'; "
        "remove os_glance_import_task locks held by finished or missing tasks."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="only list what would change")

    def handle(self, *args, dry_run: bool, verbosity: int, **options):
        report = recover_imports(dry_run=dry_run)
        report.write(self.stdout, verbosity)
