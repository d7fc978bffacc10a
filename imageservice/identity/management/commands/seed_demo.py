import os
import secrets

from django.core.management.base import BaseCommand

from imageservice.identity.services import ensure_project, ensure_user, issue_token

# (username, project, roles, token environment variable)
DEMO_ACCOUNTS = (
    ("operator", "admin", ("admin", "member", "reader"), "DEMO_OPERATOR_TOKEN"),
    ("user", "demo", ("member", "reader"), "DEMO_USER_TOKEN"),
    ("other", "other", ("member", "reader"), "DEMO_OTHER_TOKEN"),
)


class Command(BaseCommand):
    help = (
        "Create (idempotently) the demo operator and two demo users in different projects and "
        "print their tokens. DEMO_*_TOKEN fix the tokens; otherwise new ones are issued."
    )

    def handle(self, *args, **options):
        password = os.environ.get("DEMO_OPERATOR_PASSWORD") or secrets.token_urlsafe(12)
        for username, project_name, roles, token_variable in DEMO_ACCOUNTS:
            project, _ = ensure_project(project_name)
            is_operator = username == "operator"
            user, created = ensure_user(
                username, project, roles, password=password if is_operator else None
            )
            _, raw = issue_token(user, raw_token=os.environ.get(token_variable) or None)
            state = "created" if created else "exists"
            self.stdout.write(
                f"{username:9} project {project.name} ({project.id}) roles {','.join(roles)} "
                f"[{state}]\n    {token_variable}={raw}"
            )
        self.stdout.write(f"Operator admin login: operator / {password}  (/admin/)")
