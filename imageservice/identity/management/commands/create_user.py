from django.core.management.base import BaseCommand, CommandError

from imageservice.config_syntax import split_list
from imageservice.identity.models import Project
from imageservice.identity.services import ensure_user


class Command(BaseCommand):
    help = "Create a user in a project with roles, or update an existing user's project and roles."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--project", required=True, help="project name")
        parser.add_argument(
            "--roles", default="member,reader", help="comma-separated roles (default member,reader)"
        )
        parser.add_argument("--service", action="store_true", help="mark as a service user")

    def handle(self, *args, username: str, project: str, roles: str, service: bool, **options):
        found = Project.objects.filter(name=project).first()
        if found is None:
            raise CommandError(f"No project named {project!r}; create it with create_project.")
        role_names = split_list(roles)
        user, created = ensure_user(username, found, role_names, is_service=service)
        verb = "Created" if created else "Updated"
        self.stdout.write(
            f"{verb} user {user.username} (id {user.keystone_id}) in project {found.name} "
            f"with roles {', '.join(sorted(user.role_names())) or '(none)'}"
        )
