from django.core.management.base import BaseCommand, CommandError

from imageservice.policy_admin import ExplainError, explain, keystone_credentials


class Command(BaseCommand):
    help = (
        "Explain a policy decision: whether USERNAME (or, for Keystone users, the caller given "
        "by --user-id, --project-id and --roles) may perform the action RULE (on image ID, "
        "else on a target of the caller's own project), the rule's check string and source "
        "(default, file or override) and the checks that decided. The same answer as the "
        "operator console's policy page."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", metavar="USERNAME", help="a local user")
        parser.add_argument("--user-id", metavar="ID", help="a Keystone user id")
        parser.add_argument("--project-id", metavar="ID", help="the Keystone project scope")
        parser.add_argument("--roles", metavar="ROLES", help="comma-separated role names")
        parser.add_argument("--action", required=True, metavar="RULE", help="a policy rule name")
        parser.add_argument("--image", metavar="ID", help="the image the action is about")

    def handle(self, *args, user, user_id, project_id, roles, action, image, **options):
        keystone = user_id is not None or project_id is not None or roles is not None
        if keystone == (user is not None):
            raise CommandError("Give --user, or --user-id/--project-id/--roles (Keystone).")
        credentials = None
        if keystone:
            credentials = keystone_credentials(user_id or "", project_id or "", roles or "")
        try:
            explanation = explain(user, action, image, credentials)
        except ExplainError as error:
            raise CommandError(str(error)) from None
        for line in explanation.lines():
            self.stdout.write(line)
