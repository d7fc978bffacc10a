import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from tasks.cluster import run_cluster


class Command(BaseCommand):
    help = (
        "Run the job worker (a django-q2 cluster) until SIGTERM or SIGINT; a stop hands running "
        "imports back as retryable and ends within SHUTDOWN_GRACE_SECONDS."
    )

    def handle(self, *args, **options):
        # Less than the node's grace: serve, which started us, waits for us within it and
        # needs a moment to exit itself.
        sys.exit(run_cluster(max(settings.SHUTDOWN_GRACE_SECONDS - 3, 1)))
