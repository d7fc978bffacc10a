import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from imageservice.identity.clouds import clouds_yaml, password_cloud
from imageservice.identity.services import (
    ensure_project,
    ensure_user,
    issue_token,
    set_password,
)


def default_endpoint() -> str:
    """Where ``manage.py serve`` listens (the same HOST and PORT), unless PUBLIC_ENDPOINT says."""
    host, port = os.environ.get("HOST", "127.0.0.1"), os.environ.get("PORT", "8000")
    return settings.PUBLIC_ENDPOINT or f"http://{host}:{port}"


@dataclass(frozen=True)
class DemoAccount:
    username: str
    project: str
    roles: tuple[str, ...]
    cloud: str

    def variable(self, kind: str) -> str:
        return f"DEMO_{self.username.upper()}_{kind}"


DEMO_ACCOUNTS = (
    DemoAccount("operator", "admin", ("admin", "member", "reader"), "imageservice-admin"),
    DemoAccount("user", "demo", ("member", "reader"), "imageservice-demo"),
    DemoAccount("other", "other", ("member", "reader"), "imageservice-other"),
)


class Command(BaseCommand):
    help = (
        "Create (idempotently) the demo operator and two demo users in different projects, give "
        "each a token and a password, and print them with a clouds.yaml (also written to "
        "DATA_DIR/clouds.yaml). DEMO_<USER>_TOKEN and DEMO_<USER>_PASSWORD fix them; otherwise "
        "new random ones are set."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--endpoint",
            default=default_endpoint(),
            help="the service's base URL for clouds.yaml (default PUBLIC_ENDPOINT, else "
            "http://HOST:PORT as serve takes them from the environment)",
        )

    def handle(self, *args, endpoint: str, **options):
        clouds = {}
        for account in DEMO_ACCOUNTS:
            user, password = self._seed(account)
            clouds[account.cloud] = password_cloud(endpoint, user, password)
        operator_password = clouds["imageservice-admin"]["auth"]["password"]
        self.stdout.write(f"Operator admin login: operator / {operator_password}  (/admin/)")
        path = self._write_clouds(clouds_yaml(clouds))
        self.stdout.write(f"\nclouds.yaml (written to {path}):\n")
        self.stdout.write(clouds_yaml(clouds))
        self.stdout.write(
            f"Try: OS_CLIENT_CONFIG_FILE={path} openstack --os-cloud imageservice-demo image list"
        )

    def _seed(self, account: DemoAccount):
        project, _ = ensure_project(account.project)
        user, created = ensure_user(account.username, project, account.roles)
        password = os.environ.get(account.variable("PASSWORD")) or secrets.token_urlsafe(12)
        set_password(user, password)
        _, raw = issue_token(user, raw_token=os.environ.get(account.variable("TOKEN")) or None)
        state = "created" if created else "exists"
        self.stdout.write(
            f"{account.username:9} project {project.name} ({project.id}) "
            f"roles {','.join(account.roles)} [{state}]\n"
            f"    {account.variable('TOKEN')}={raw}\n"
            f"    {account.variable('PASSWORD')}={password}"
        )
        return user, password

    def _write_clouds(self, text: str) -> Path:
        path = Path(settings.DATA_DIR) / "clouds.yaml"
        # It holds passwords: readable by the owner only, from the moment it exists.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as output:
            output.write(text)
        path.chmod(0o600)
        return path
