import getpass
import secrets
import sys

from django.core.management.base import BaseCommand, CommandError

from imageservice.identity.models import User
from imageservice.identity.services import set_password


class Command(BaseCommand):
    help = (
        "Set or reset a user's password for logging in at /identity/v3 and the console; this "
        "also unlocks an account locked by failed logins. Without --password or --random, asks "
        "for it twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        choice = parser.add_mutually_exclusive_group()
        choice.add_argument("--password", help="the new password (visible to other local users)")
        choice.add_argument(
            "--random", action="store_true", help="a new random password, printed once"
        )

    def handle(self, *args, username: str, password: str | None, random: bool, **options):
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if random:
            password = secrets.token_urlsafe(12)
        elif password is None:
            password = self._ask()
        forgotten = set_password(user, password)
        shown = f": {password}" if random else "."
        self.stdout.write(f"Set the password of {user.username}{shown}")
        if forgotten:
            self.stdout.write(f"Unlocked: {forgotten} failed login(s) forgotten.")

    def _ask(self) -> str:
        if not sys.stdin.isatty():
            raise CommandError("Give --password or --random, or run this in a terminal.")
        first = getpass.getpass("New password: ")
        if not first or first != getpass.getpass("Again: "):
            raise CommandError("The passwords were empty or did not match; nothing changed.")
        return first
