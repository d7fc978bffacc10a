"""Load Glance's ``property_protection_file`` into the ``PropertyProtection`` rules."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError
from django.db import transaction

from images.models import PropertyProtection
from images.protection_files import ProtectionFileError, parse_protection_file
from images.protections import forget_property_rules
from imageservice.events.context import AuditedCommand
from imageservice.policy.engine import PolicyError, get_policy


class Command(AuditedCommand):
    help = (
        "Replace the property protection rules with the sections of a Glance "
        "property_protection_file (roles or policies format). Nothing is changed when the "
        "file has an error; the message names its line. --clear removes every rule, which "
        "turns property protections off."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", help="the property_protection_file to load")
        parser.add_argument(
            "--format",
            dest="rule_format",
            choices=PropertyProtection.RuleFormat.values,
            default=PropertyProtection.RuleFormat.ROLES,
            help="Glance's property_protection_rule_format (default: roles)",
        )
        parser.add_argument("--clear", action="store_true", help="remove every rule instead")
        parser.add_argument("--dry-run", action="store_true", help="check only, change nothing")

    def handle(self, *args, path, rule_format, clear, dry_run, **options):
        if clear == bool(path):
            raise CommandError("Give either a file to load or --clear.")
        if clear:
            self._clear(dry_run)
            return
        loaded = self._parse(Path(path), rule_format)
        for warning in loaded.warnings:
            self.stderr.write(f"{path}: {warning}")
        if not dry_run:
            # All or nothing: requests never see half of the old rules and half of the new.
            with transaction.atomic():
                PropertyProtection.objects.all().delete()
                PropertyProtection.objects.bulk_create(
                    PropertyProtection(
                        position=position,
                        pattern=section.pattern,
                        rule_format=rule_format,
                        **{f"{op}_rule": value for op, value in section.rules.items()},
                    )
                    for position, section in enumerate(loaded.sections, start=1)
                )
            forget_property_rules()  # bulk writes send no signals
        if options["verbosity"] >= 2:
            for section in loaded.sections:
                self.stdout.write(f"[{section.pattern}] (line {section.line})")
        verb = "Would load" if dry_run else "Loaded"
        self.stdout.write(
            f"{verb} {len(loaded.sections)} property protection section(s) in the "
            f"{rule_format} format from {path}."
        )

    def _parse(self, path: Path, rule_format: str):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"Cannot read {path}: {error}") from None
        try:
            policy_rules = get_policy().rules if rule_format == "policies" else {}
            loaded = parse_protection_file(text, rule_format, policy_rules)
        except (ProtectionFileError, PolicyError) as error:
            raise CommandError(f"{path}: {error}") from None
        if not loaded.sections:
            # Glance would deny every custom property; here no rules means the feature is off.
            raise CommandError(
                f"{path}: no sections to load; use --clear to turn property protections off."
            )
        return loaded

    def _clear(self, dry_run: bool) -> None:
        count = PropertyProtection.objects.count()
        if not dry_run:
            PropertyProtection.objects.all().delete()
            forget_property_rules()
        verb = "would be" if dry_run else "were"
        self.stdout.write(
            f"{count} property protection section(s) {verb} removed; protections are off."
        )
