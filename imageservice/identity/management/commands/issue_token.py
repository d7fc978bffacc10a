from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from imageservice.identity.models import User
from imageservice.identity.services import issue_token


class Command(BaseCommand):
    help = "Issue an API token (X-Auth-Token) for a user. The token is shown once."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--expires-in", type=int, metavar="HOURS", help="lifetime in hours")
        parser.add_argument("--description", default="")

    def handle(self, *args, username: str, expires_in: int | None, description: str, **options):
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        expires_at = timezone.now() + timedelta(hours=expires_in) if expires_in else None
        token, raw = issue_token(user, expires_at=expires_at, description=description)
        expiry = f"expires {expires_at:%Y-%m-%dT%H:%M:%SZ}" if expires_at else "no expiry"
        self.stdout.write(f"Issued token {token.prefix}… for {user.username} ({expiry}):")
        self.stdout.write(raw)
