from django.core.management.base import BaseCommand

from imageservice.identity.services import ensure_project


class Command(BaseCommand):
    help = "Create a project (a Keystone project: the owner of images)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--description", default="")

    def handle(self, *args, name: str, description: str, **options):
        project, created = ensure_project(name, description)
        verb = "Created" if created else "Found existing"
        self.stdout.write(f"{verb} project {project.name} (id {project.id})")
