from imageservice.events.context import AuditedCommand
from tasks.housekeeping import DEFAULT_STAGING_MAX_AGE_HOURS, cleanup_staging


class Command(AuditedCommand):
    help = (
        "Remove staging files (staged data, .partial files, .work-<task> directories) that no "
        "upload or import will use again: those of gone, deleted or no longer uploading/importing "
        "images, of finished tasks, and those older than --older-than hours with no live task. "
        "Staged data waiting for its import and files of live imports are kept. Also deletes "
        "staged-data records whose file is gone."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="only list what would change")
        parser.add_argument(
            "--older-than",
            type=float,
            default=DEFAULT_STAGING_MAX_AGE_HOURS,
            metavar="HOURS",
            help="age after which an unused staging file of an uploading/importing image is "
            f"removed (default {DEFAULT_STAGING_MAX_AGE_HOURS:g})",
        )

    def handle(self, *args, dry_run: bool, older_than: float, verbosity: int, **options):
        report = cleanup_staging(dry_run=dry_run, older_than_hours=older_than)
        report.write(self.stdout, verbosity)
