from django.core.management.base import BaseCommand, CommandError

from imageservice.identity.models import ApiToken
from imageservice.identity.tokens import hash_token


class Command(BaseCommand):
    help = "Revoke API tokens: one by its clear text or prefix, or every token of a user."

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--token", help="the token's clear text")
        target.add_argument("--prefix", help="the first 8 characters shown when it was issued")
        target.add_argument("--user", help="revoke every token of this username")

    def handle(self, *args, token: str, prefix: str, user: str, **options):
        tokens = ApiToken.objects.usable()
        if token:
            tokens = tokens.filter(digest=hash_token(token))
        elif prefix:
            tokens = tokens.filter(prefix=prefix)
        else:
            tokens = tokens.filter(user__username=user)
        if prefix and tokens.count() > 1:
            raise CommandError(f"Prefix {prefix!r} matches several tokens; use --token.")
        revoked = [found for found in tokens.select_related("user") if found.revoke()]
        for found in revoked:
            self.stdout.write(f"Revoked token {found.prefix}… of {found.user.username}")
        self.stdout.write(f"{len(revoked)} token(s) revoked.")
