"""Write the ``PropertyProtection`` rules as a Glance ``property_protection_file``."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from images.models import PropertyProtection
from images.protection_files import (
    ProtectionFileError,
    ProtectionSection,
    write_protection_file,
)
from images.protections import OPERATIONS


class Command(BaseCommand):
    help = (
        "Print the property protection rules as a Glance property_protection_file, or write "
        "them to --output. Set Glance's property_protection_rule_format to the format named "
        "in the file's first line."
    )

    def add_arguments(self, parser):
        parser.add_argument("--output", help="write to this file instead of standard output")

    def handle(self, *args, output, **options):
        rows = list(PropertyProtection.objects.all())
        if not rows:
            raise CommandError("No property protection rules are loaded: protections are off.")
        formats = {row.rule_format for row in rows}
        if len(formats) > 1:
            # One Glance file has one format; rows edited by hand may mix them.
            raise CommandError(
                f"The rules mix the {' and '.join(sorted(formats))} formats; "
                "a property_protection_file has one."
            )
        sections = [
            ProtectionSection(row.pattern, {op: row.rule_for(op) for op in OPERATIONS})
            for row in rows
        ]
        try:
            text = write_protection_file(sections, formats.pop())
        except ProtectionFileError as error:
            raise CommandError(str(error)) from None
        if not output:
            self.stdout.write(text, ending="")
            return
        Path(output).write_text(text, encoding="utf-8")
        self.stdout.write(f"Exported {len(sections)} property protection section(s) to {output}.")
