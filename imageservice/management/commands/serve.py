import os
import signal
import subprocess
import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand

from imageservice.metrics.multiprocess import server_environment
from tasks.schedules import ensure_schedules


class Command(BaseCommand):
    help = "Serve the API with gunicorn and run the django-q2 worker beside it until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
        parser.add_argument(
            "--workers", default=os.environ.get("WEB_CONCURRENCY", "4"), help="gunicorn workers"
        )

    def handle(self, *args, host: str, port: str, workers: str, **options):
        # Uploads cut off by a previous stop would otherwise wait for their next PUT /file.
        call_command("recover_uploads", stdout=self.stdout)
        # Housekeeping (recover_imports, cleanup_staging, purge_tasks) runs in the job worker.
        ensure_schedules()
        python = sys.executable
        gunicorn = [
            python, "-m", "gunicorn", "imageservice.wsgi:application",
            "--bind", f"{host}:{port}", "--workers", workers,
            "--worker-class", "gthread", "--threads", "2", "--keep-alive", "5",
            "--timeout", "300",
        ]  # fmt: skip
        # gthread workers keep client connections alive: a new TCP connection per request
        # cost more CPU than a whole image-list page (docs/benchmarks.md).
        if os.environ.get("ACCESS_LOG", "").lower() in {"1", "true", "yes", "on"}:
            gunicorn += ["--access-logfile", "-"]
        worker = [python, "manage.py", "qcluster"]
        # One metrics directory shared by the gunicorn workers and the job worker.
        env = server_environment(host, port)
        children = [subprocess.Popen(gunicorn, env=env), subprocess.Popen(worker, env=env)]
        self.stdout.write(
            f"Serving on http://{host}:{port}/ with {workers} workers and a job worker"
        )

        def stop(signum, frame):
            for child in children:
                child.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        # If either process dies, stop the other: a half-running service is worse than none.
        while all(child.poll() is None for child in children):
            try:
                children[0].wait(timeout=1)
            except subprocess.TimeoutExpired:
                continue
        stop(None, None)
        for child in children:
            child.wait()
