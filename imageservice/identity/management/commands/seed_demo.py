import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml
from django.conf import settings
from django.core.management.base import BaseCommand

from imageservice.identity.clouds import clouds_yaml, password_cloud
from imageservice.identity.models import User
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


SEED_TOKEN = "seed_demo"  # the description of the tokens this command issues


class Command(BaseCommand):
    help = (
        "Create (idempotently) the demo operator and two demo users in different projects. At "
        "the first run each gets a random password and token, printed once and kept in a "
        "clouds.yaml (DATA_DIR/clouds.yaml, 0600); later runs keep them and print none. "
        "DEMO_<USER>_TOKEN and DEMO_<USER>_PASSWORD fix them instead."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--endpoint",
            default=default_endpoint(),
            help="the service's base URL for clouds.yaml (default PUBLIC_ENDPOINT, else "
            "http://HOST:PORT as serve takes them from the environment)",
        )

    def handle(self, *args, endpoint: str, **options):
        known = _known_passwords(self._clouds_path())
        clouds = {}
        for account in DEMO_ACCOUNTS:
            user, password = self._seed(account, known.get(account.cloud))
            cloud = password_cloud(endpoint, user, password or "")
            if password is None:
                del cloud["auth"]["password"]  # the client asks for it
            clouds[account.cloud] = cloud
        path = self._write_clouds(clouds_yaml(clouds))
        self.stdout.write(
            f"\nOperator console: {endpoint.rstrip('/')}/admin/ as operator, with "
            "DEMO_OPERATOR_PASSWORD above (shown at the first run only) or from clouds.yaml."
        )
        self.stdout.write(f"clouds.yaml written to {path} (readable by you only).")
        self.stdout.write(
            f"Try: OS_CLIENT_CONFIG_FILE={path} openstack --os-cloud imageservice-demo image list"
        )

    def _seed(self, account: DemoAccount, known_password: str | None) -> tuple[User, str | None]:
        project, _ = ensure_project(account.project)
        user, created = ensure_user(account.username, project, account.roles)
        password, password_note = self._password(account, user, known_password)
        token_note = self._token(account, user)
        state = "created" if created else "exists"
        self.stdout.write(
            f"{account.username:9} project {project.name} ({project.id}) "
            f"roles {','.join(account.roles)} [{state}]\n"
            f"    {account.variable('TOKEN')}{token_note}\n"
            f"    {account.variable('PASSWORD')}{password_note}"
        )
        return user, password

    def _password(
        self, account: DemoAccount, user: User, known: str | None
    ) -> tuple[str | None, str]:
        """The account's password and how to show it: a new one once, then never again."""
        fixed = os.environ.get(account.variable("PASSWORD"))
        if fixed:
            if not user.check_password(fixed):
                set_password(user, fixed)
            return fixed, " as set in the environment"
        if user.has_usable_password():
            # Resetting it at every start would undo the operator's own change of it.
            if known and user.check_password(known):
                return known, " unchanged (in clouds.yaml)"
            return None, " unchanged (set with `manage.py set_password`, not in clouds.yaml)"
        password = secrets.token_urlsafe(12)
        set_password(user, password)
        return password, f"={password}  (new: shown this once)"

    def _token(self, account: DemoAccount, user: User) -> str:
        fixed = os.environ.get(account.variable("TOKEN"))
        if fixed:
            issue_token(user, raw_token=fixed, description=SEED_TOKEN)
            return " as set in the environment"
        if user.tokens.filter(description=SEED_TOKEN, revoked_at__isnull=True).exists():
            return " unchanged (issued at the first start; `manage.py revoke_token` to renew)"
        _, raw = issue_token(user, description=SEED_TOKEN)
        return f"={raw}  (new: shown this once)"

    def _clouds_path(self) -> Path:
        return Path(settings.DATA_DIR) / "clouds.yaml"

    def _write_clouds(self, text: str) -> Path:
        path = self._clouds_path()
        # It holds passwords: readable by the owner only, from the moment it exists.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as output:
            output.write(text)
        path.chmod(0o600)
        return path


def _known_passwords(path: Path) -> dict[str, str]:
    """cloud name → the password an earlier run wrote into clouds.yaml."""
    try:
        clouds = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}
    known = {}
    for name, cloud in (clouds.get("clouds") or {}).items():
        password = ((cloud or {}).get("auth") or {}).get("password")
        if isinstance(password, str):
            known[name] = password
    return known
