from django.core.management.base import BaseCommand, CommandError

from imageservice.policy_admin import ExplainError, explain


class Command(BaseCommand):
    help = (
        "Explain a policy decision: whether USERNAME may perform the action RULE (on image ID, "
        "else on a target of the user's own project), the rule's check string and source "
        "(default, file or override) and the checks that decided. The same answer as the "
        "operator console's policy page."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, metavar="USERNAME")
        parser.add_argument("--action", required=True, metavar="RULE", help="a policy rule name")
        parser.add_argument("--image", metavar="ID", help="the image the action is about")

    def handle(self, *args, user: str, action: str, image: str | None, **options):
        try:
            explanation = explain(user, action, image)
        except ExplainError as error:
            raise CommandError(str(error)) from None
        for line in explanation.lines():
            self.stdout.write(line)
