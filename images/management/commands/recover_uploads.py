from django.conf import settings

from images.data import recover_stale_upload
from images.models import Image, ImageStatus
from imageservice.events.context import AuditedCommand
from imageservice.quotas.services import release_dead_reservations


class Command(AuditedCommand):
    help = (
        "Put images stuck in 'saving', or half-staged in 'uploading', whose upload stopped for "
        "UPLOAD_STALE_SECONDS (e.g. the worker was killed) back to 'queued' and remove their "
        "partial files, and drop the quota reservations such uploads left."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="only list what would change")

    def handle(self, *args, dry_run: bool, **options):
        stale = [
            image
            for image in Image.objects.alive().filter(
                status__in=[ImageStatus.SAVING, ImageStatus.UPLOADING]
            )
            if image.is_stale_upload()
        ]
        for image in stale:
            if not dry_run:
                recover_stale_upload(image)
            if options["verbosity"] >= 1:
                self.stdout.write(f"{'Would recover' if dry_run else 'Recovered'} {image.id}")
        released = 0 if dry_run else release_dead_reservations()
        verb = "would be" if dry_run else "were"
        self.stdout.write(
            f"{len(stale)} stuck upload(s) {verb} reset to queued "
            f"(silent for over {settings.UPLOAD_STALE_SECONDS} s); "
            f"{released} dead quota reservation(s) released."
        )
